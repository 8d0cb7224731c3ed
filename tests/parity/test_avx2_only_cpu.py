"""The int8 and parity checks on an AVX2-only x86 CPU (no AVX-512, no VNNI), whatever CPU runs
the suite (issue 13).

ONNX Runtime offers no switch to cap its instruction set: MLAS picks kernels from CPUID at
start-up, with no environment variable or session option to lower the choice, and glibc tunables
(``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F``) change only glibc's own dispatch. So the tests run
under ``qemu-x86_64 -cpu EPYC-Rome`` (user-mode emulation, AVX2 + FMA, no AVX-512/VNNI), whose
emulated CPUID is what MLAS reads. ``DK_CPU_FLAGS`` tells dk the emulated flags, because
``/proc/cpuinfo`` still describes the host. Skips where qemu-user is not installed
(``apt-get install qemu-user``). Under emulation the selected tests took 2.8 min on a loaded
2-core VM. The emulation reproduces AVX2-only results exactly: the former ORT-judged trt Q/DQ
accuracy test failed under it with the numbers reported from a real AVX2-only EPYC (0.9528 against
ort's own Q/DQ 0.9806), and passes since it is judged by ``onnx.reference``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QEMU = shutil.which("qemu-x86_64")
CPU_MODEL = "EPYC-Rome"  # AVX2, FMA, no AVX-512, no VNNI
EMULATED_FLAGS = "sse4_1 avx avx2 fma"
#: The checks that depend on the CPU's int8 and fp32 kernels (one shared fixture: one export, one quantize).
TESTS = [
    "tests/parity/test_ort_parity.py::TestOrtConformance::test_fp32_matches_reference_evaluator",
    "tests/parity/test_ort_parity.py::TestOrtConformance::test_reduced_precision_keeps_accuracy[int8]",
    "tests/parity/test_ort_parity.py::TestOrtConformance::test_reduced_precision_matches_reference[int8]",
]
PROBE = """
import sys
import numpy as np
import onnxruntime
from dk.default_model import load_split
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
np.save(sys.argv[2], session.run(None, {"input": load_split("eval")[0]})[0])
"""

pytestmark = [
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 only"),
    pytest.mark.skipif(QEMU is None, reason="qemu-user is not installed (apt-get install qemu-user): "
                                           "no emulated AVX2-only CPU to run the int8 and parity tests on"),
    pytest.mark.skipif(os.environ.get("DK_EMULATED_CPU") is not None, reason="already under emulation"),
]


def emulated(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "DK_CPU_FLAGS": EMULATED_FLAGS, "DK_EMULATED_CPU": CPU_MODEL}
    return subprocess.run([QEMU, "-cpu", CPU_MODEL, sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_emulation_really_changes_onnx_runtimes_int8_kernels(tmp_path):
    """On a host with VNNI, 8-bit-weight int8 outputs differ under emulation: MLAS took the AVX2
    (``vpmaddubsw``) path instead of the host's VNNI one."""
    import numpy as np

    from dk import api
    from dk.cpu_isa import has_vnni
    from dk.sources import parse_model_arg
    from dk.specs import QuantizeRequest

    pytest.importorskip("onnxruntime")
    if not has_vnni():
        pytest.skip("this host has no VNNI: its int8 path may equal the emulated one, nothing to tell apart")
    artifact = api.quantize("ort", QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path,
                                                   options={"reduce_range": "0"}))
    host, guest = tmp_path / "host.npy", tmp_path / "guest.npy"
    subprocess.run([sys.executable, "-c", PROBE, str(artifact.model_file), str(host)], check=True, timeout=120)
    proc = emulated(["-c", PROBE, str(artifact.model_file), str(guest)], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    difference = float(np.max(np.abs(np.load(host) - np.load(guest))))
    assert difference > 0, "int8 outputs under the emulated AVX2 CPU equal the host's VNNI outputs"


def test_int8_and_parity_tests_pass_on_an_emulated_avx2_only_cpu():
    proc = emulated(["-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], timeout=900)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0 and f"{len(TESTS)} passed" in summary, (
        f"under qemu -cpu {CPU_MODEL}: {summary}\n{proc.stdout[-3000:]}\n{proc.stderr[-1500:]}")
