"""The cuda plugin with nvidia-ml-py: the no-GPU path for real, GPU sampling where there is one."""

from __future__ import annotations

import pytest

pytest.importorskip("pynvml", reason="the cuda plugin samples through nvidia-ml-py: pip install nvidia-ml-py")

from dk_cuda import nvml  # noqa: E402
from dk_cuda.plugin import dk_collect_hw_stats, dk_describe  # noqa: E402


def _gpu_present() -> bool:
    try:
        nvml.session()
    except nvml.NvmlUnavailable:
        return False
    return True


def test_without_a_gpu_doctor_says_why_and_sampling_returns_nothing():
    if _gpu_present():
        pytest.skip("an NVIDIA GPU is present")
    info = dk_describe(probe=False)
    assert not info.available and info.status == "no-device" and info.devices == []
    assert "NVML" in info.reason or "NVIDIA" in info.reason
    assert dk_collect_hw_stats() == []
    assert dk_collect_hw_stats() == []  # the failure is remembered, not retried


def test_the_reason_names_the_missing_library_or_gpu():
    if _gpu_present():
        pytest.skip("an NVIDIA GPU is present")
    with pytest.raises(nvml.NvmlUnavailable) as err:
        nvml.session()
    assert err.value.reason in (
        "no NVML library (libnvidia-ml.so.1 not found): no NVIDIA driver on this machine",
        "the NVIDIA driver is not loaded (is there an NVIDIA GPU?)",
        "no NVIDIA GPU: NVML sees 0 devices",
    ) or err.value.reason.startswith("NVML failed to start")


def test_gpu_samples_are_real_numbers():
    if not _gpu_present():
        pytest.skip("needs an NVIDIA GPU with its driver (NVML)")
    samples = {s.metric: s for s in dk_collect_hw_stats()}
    assert 0 <= samples["gpu0.util"].value <= 100 and samples["gpu0.mem_used"].value > 0
    assert samples["gpu0.temp"].unit == "C" and samples["gpu0.power"].value > 0
    info = dk_describe(probe=False)
    assert info.available and info.details["gpus"] and info.details["driver"]


def test_fleet_target_tags_name_the_compute_capability():
    assert nvml.cuda_target(9, 0) == "cuda-sm90" and nvml.cuda_target(8, 7) == "cuda-sm87"


def test_a_gpu_machine_advertises_its_target():
    if not _gpu_present():
        pytest.skip("needs an NVIDIA GPU with its driver (NVML)")
    info = dk_describe(probe=False)
    assert info.targets and all(t.startswith("cuda-sm") for t in info.targets)
