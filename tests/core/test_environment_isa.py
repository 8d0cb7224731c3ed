"""The CPU's speed-relevant ISA extensions, recorded with every benchmark and named in reports."""

from __future__ import annotations

from dk.bench.environment import cpu_isa

AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse4_2 avx f16c fma avx2 bmi2\n"
AVX512_VNNI = "flags\t\t: fpu avx avx2 avx512f avx512bw avx512_vnni avx_vnni avx512_bf16 amx_int8\n"
ARM = "Features\t: fp asimd evtstrm aes asimddp\n"


def test_isa_extensions_are_read_from_cpuinfo_flags():
    assert cpu_isa(AVX2_ONLY) == ["avx2"]
    assert cpu_isa(AVX512_VNNI) == ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"]
    assert cpu_isa(ARM) == ["asimd", "asimddp"]
    assert cpu_isa("no flags here") == []
