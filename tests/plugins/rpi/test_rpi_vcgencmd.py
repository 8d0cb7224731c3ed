"""vcgencmd answers from real Raspberry Pi output, sysfs readers, and detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from dk_rpi import sampling, sysfs, vcgencmd

FIXTURE = Path(__file__).parent / "fixtures" / "vcgencmd_outputs.txt"


def answers(command: str) -> list[str]:
    rows = [line.split("\t") for line in FIXTURE.read_text().splitlines() if line and not line.startswith("#")]
    return [answer for cmd, answer in rows if cmd == command]


def test_temperatures():
    assert [vcgencmd.parse_temp(a) for a in answers("measure_temp")] == [62.3, 39.2, None]


def test_clocks_in_mhz():
    assert vcgencmd.parse_clock(answers("measure_clock arm")[0]) == 1400.0
    assert vcgencmd.parse_clock(answers("measure_clock v3d")[0]) == 0.0


def test_throttled_bits_are_decoded():
    values = [vcgencmd.parse_throttled(a) for a in answers("get_throttled")]
    assert values == [0x0, 0x50000, 0x50005]
    assert vcgencmd.throttle_flags(0x0) == []
    assert vcgencmd.throttle_flags(0x50005) == ["under-voltage detected", "currently throttled",
                                                "under-voltage has occurred", "throttling has occurred"]


def test_volts_and_error_answers():
    assert vcgencmd.parse_volts(answers("measure_volts")[0]) == 1.2
    assert vcgencmd.parse_throttled("VCHI initialization failed") is None
    assert vcgencmd.parse_clock("") is None


def test_missing_vcgencmd_is_none():
    assert vcgencmd.run("measure_temp", command="dk-no-such-vcgencmd") is None


def test_thermal_zones_and_cpufreq_from_sysfs(tmp_path):
    for i, (kind, milli) in enumerate((("cpu-thermal", "48250"), ("gpu-thermal", "45000"))):
        zone = tmp_path / "thermal" / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    for cpu, khz in ((0, "1500000"), (1, "600000")):
        freq = tmp_path / "cpu" / f"cpu{cpu}" / "cpufreq"
        freq.mkdir(parents=True)
        (freq / "scaling_cur_freq").write_text(khz)
    (tmp_path / "cpu" / "cpufreq").mkdir()  # not a cpuN folder
    assert sysfs.thermal_zones(tmp_path / "thermal") == {"cpu-thermal": 48.25, "gpu-thermal": 45.0}
    assert sysfs.cpu_freqs(tmp_path / "cpu") == {0: 1500.0, 1: 600.0}


def test_detection_by_device_tree_model(tmp_path):
    model = tmp_path / "model"
    assert sampling.unavailable_reason(model) == f"not a Raspberry Pi (no {model})"
    model.write_bytes(b"NVIDIA Jetson Nano Developer Kit\0")
    assert sampling.unavailable_reason(model) == f"not a Raspberry Pi ({model} says 'NVIDIA Jetson Nano Developer Kit')"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\0")
    assert sampling.unavailable_reason(model) is None


def test_doctor_entry_here():
    from dk_rpi.plugin import dk_describe, dk_collect_hw_stats

    info = dk_describe(probe=False)
    if info.available:
        pytest.skip("this machine is a Raspberry Pi")
    assert info.status == "no-device" and info.reason.startswith("not a Raspberry Pi")
    assert dk_collect_hw_stats() == []


@pytest.mark.parametrize("model, tag", [
    ("Raspberry Pi 4 Model B Rev 1.4", "rpi4"), ("Raspberry Pi 5 Model B Rev 1.0", "rpi5"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", "rpi3"), ("Raspberry Pi Zero 2 W Rev 1.0", "rpi-zero2"),
    ("Raspberry Pi Compute Module 4 Rev 1.0", "rpi-cm4"), ("NVIDIA Jetson AGX Orin", None), (None, None)])
def test_fleet_target_tag_from_the_board_model(model, tag):
    assert sysfs.board_target(model) == tag
