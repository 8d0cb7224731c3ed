"""int8 quantization picks the weight range for the CPU's ISA and says so (issue 13).

The AVX2-only CPU is simulated by replacing the flag reader; everything else (quantizer,
artifact, accuracy) is real."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from dk import api, cpu_isa
from dk.cli import cli as main
from dk.errors import DkError
from dk.sources import parse_model_arg
from dk.specs import QuantizeRequest
from dk_ort import int8_isa

pytest.importorskip("onnxruntime", reason="the ort quantizer needs onnxruntime")

AVX2_ONLY = frozenset({"sse4_1", "avx", "avx2", "fma"})
AVX512_NO_VNNI = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl"}
VNNI = AVX512_NO_VNNI | {"avx512_vnni"}


@pytest.fixture
def cpu(monkeypatch):
    """Pretend this x86 CPU has the given flags."""

    def pretend(flags: frozenset[str]) -> None:
        monkeypatch.setattr(cpu_isa, "cpu_flags", lambda: flags)
        monkeypatch.setattr(cpu_isa.platform, "machine", lambda: "x86_64")

    return pretend


@pytest.mark.parametrize(("flags", "isa", "reduce"), [
    (AVX2_ONLY, "avx2", True), (AVX512_NO_VNNI, "avx512", True), (VNNI, "avx512-vnni", False),
    (AVX2_ONLY | {"avx_vnni"}, "avx-vnni", False), (VNNI | {"amx_int8", "amx_tile"}, "amx", False),
])
def test_weight_range_follows_the_isa_unless_the_user_sets_it(cpu, flags, isa, reduce):
    cpu(flags)
    chosen = int8_isa.choose_weight_range({})
    assert (chosen.isa, chosen.reduce_range) == (isa, reduce), chosen.reason
    assert ("7 bits" in chosen.reason) is reduce, chosen.reason
    assert int8_isa.choose_weight_range({"reduce_range": "0"}).reduce_range is False
    assert int8_isa.choose_weight_range({"reduce_range": "1"}).reduce_range is True
    with pytest.raises(DkError, match="option reduce_range=maybe is not 0 or 1"):
        int8_isa.choose_weight_range({"reduce_range": "maybe"})


def test_off_x86_full_8_bit_weights(monkeypatch):
    monkeypatch.setattr(cpu_isa, "cpu_flags", lambda: frozenset({"asimd", "asimddp"}))
    monkeypatch.setattr(cpu_isa.platform, "machine", lambda: "aarch64")
    assert int8_isa.choose_weight_range({}).reduce_range is False
    assert cpu_isa.int8_isa() == "aarch64"


def test_flags_come_from_proc_cpuinfo(monkeypatch):
    monkeypatch.delenv("DK_CPU_FLAGS", raising=False)
    cpu_isa.cpu_flags.cache_clear()
    flags = cpu_isa.cpu_flags()
    text = open("/proc/cpuinfo").read()
    line = next(li for li in text.splitlines() if li.split(":")[0].strip() in ("flags", "Features"))
    assert flags == frozenset(line.split(":", 1)[1].split())
    assert cpu_isa.int8_flags() == [f for f in cpu_isa.INT8_FLAGS if f in flags]
    cpu_isa.cpu_flags.cache_clear()
    monkeypatch.setenv("DK_CPU_FLAGS", "sse4_1,avx2 fma")
    assert cpu_isa.cpu_flags() == {"sse4_1", "avx2", "fma"} and cpu_isa.int8_isa() in ("avx2", "x86_64", "aarch64")
    cpu_isa.cpu_flags.cache_clear()


def _weights(artifact) -> list[np.ndarray]:
    model = onnx.load(str(artifact.model_file))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    return [inits[n.input[0]] for n in dq if n.input[0] in inits and inits[n.input[0]].dtype == np.int8]


def test_avx2_only_cpu_quantizes_weights_to_7_bits_and_says_so(cpu, tmp_path):
    cpu(AVX2_ONLY)
    request = QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path / "avx2")
    artifact = api.quantize("ort", request)
    assert artifact.manifest["options"]["reduce_range"] is True
    assert artifact.manifest["extra"]["weight_range"]["isa"] == "avx2"
    assert "without VNNI: weights quantized to 7 bits" in artifact.manifest["extra"]["notes"][0]
    weights = _weights(artifact)
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64, (
        "reduce_range should keep int8 weights within 7 bits (|w| <= 64)")

    cpu(VNNI)
    full = api.quantize("ort", QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path / "vnni"))
    assert full.manifest["options"]["reduce_range"] is False
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in _weights(full)) > 64


def test_quantize_output_and_doctor_name_the_isa(cpu, tmp_path):
    cpu(AVX2_ONLY)
    runner = CliRunner()
    result = runner.invoke(main, ["run", "quantize", "--plugin", "ort", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "avx2 without VNNI" in result.output and "7 bits" in result.output, result.output
    doctor = runner.invoke(main, ["doctor", "--json"])
    assert doctor.exit_code == 0, doctor.output
    report = json.loads(doctor.output)
    assert report["cpu"]["int8_isa"] == "avx2" and report["cpu"]["vnni"] is False
    assert report["cpu"]["flags"] == ["sse4_1", "avx2", "fma"]
    ort = next(p for p in report["plugins"] if p["name"] == "ort")
    assert "7-bit weights" in ort["details"]["int8"], ort["details"]
    text = runner.invoke(main, ["doctor"])
    assert "int8 path avx2 (no VNNI: int8 weights use 7 bits (reduce_range) by default)" in text.output


def test_environment_record_holds_the_int8_isa(cpu):
    from dk.bench.environment import collect

    cpu(AVX512_NO_VNNI)
    record = collect()
    assert record["cpu_isa"] == {"int8_isa": "avx512", "vnni": False,
                                 "flags": ["sse4_1", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"]}
