"""tegrastats parsing on real output lines of Xavier, Nano, TX2 and Orin boards, and board detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from dk_jetson import board
from dk_jetson.tegrastats import parse_line, to_samples

FIXTURES = Path(__file__).parent / "fixtures"


def lines(name: str) -> list[str]:
    text = (FIXTURES / name).read_text().splitlines()
    return [line for line in text if line.strip() and not line.startswith("#")]


def test_every_fixture_line_parses_ram_cpu_and_temperatures():
    for fixture in sorted(FIXTURES.glob("*.txt")):
        for line in lines(fixture.name):
            stats = parse_line(line)
            assert stats.ram_used_mb and stats.ram_total_mb > stats.ram_used_mb, fixture.name
            assert len(stats.cpu) in (4, 6, 8, 12), fixture.name
            assert stats.temps and all(-100 < t < 100 for t in stats.temps.values()), fixture.name


def test_agx_xavier_rails_without_unit_sum_to_total_power():
    stats = parse_line(lines("agx_xavier_jp42.txt")[0])
    assert stats.rails_mw == {"GPU": (463, 463), "CPU": (618, 618), "SOC": (2936, 2936), "CV": (0, 0),
                              "VDDRQ": (309, 309), "SYS5V": (3306, 3306)}
    assert stats.total_power_w == pytest.approx((463 + 618 + 2936 + 309 + 3306) / 1000)
    assert stats.gpu == {"GR3D": (0.0, None)} and stats.emc_mhz is None
    assert "pmic" not in stats.temps and stats.temps["tdiode"] == 32.0  # PMIC@100C is a placeholder


def test_offline_cores_are_none_and_excluded_from_the_average():
    stats = parse_line(lines("agx_xavier_cores_off.txt")[0])
    assert stats.cpu[:4] == [(2.0, 1190.0), (0.0, 1190.0), (0.0, 1190.0), (0.0, 1190.0)]
    assert stats.cpu[4:] == [(None, None)] * 4
    samples = {s.metric: s.value for s in to_samples(stats, 0.0)}
    assert samples["jetson.cpu.util"] == 0.5 and "jetson.cpu5.util" not in samples
    assert samples["jetson.gpu.freq"] == 318 and samples["jetson.emc.freq"] == 665


def test_nano_input_rail_is_the_total_power():
    old, new = parse_line(lines("nano_jp43.txt")[0]), parse_line(lines("nano_jp461.txt")[0])
    assert old.rails_mw["POM_5V_IN"] == (1997, 2089) and old.total_power_w == pytest.approx(1.997)
    assert new.total_power_w == pytest.approx(1.750) and "IRAM" not in new.rails_mw
    assert new.gpu == {"GR3D": (0.0, 76.0)} and new.emc_util == 0 and new.emc_mhz == 1600
    assert new.temps["pmic"] == 50.0  # a real reading here, not the 100C placeholder


def test_tx2_busy_line():
    stats = parse_line(lines("tx2.txt")[1])
    assert stats.gpu["GR3D"] == (36.0, 140.0) and stats.emc_util == 16 and stats.emc_mhz == 102
    assert stats.cpu[3] == (7.0, 345.0) and stats.total_power_w == pytest.approx(1.776)
    assert stats.rails_mw["VDD_DDR"] == (250, 275)


def test_orin_nano_line_without_emc_field():
    stats = parse_line(lines("orin_nano_jp6.txt")[0])
    assert stats.emc_util is None and stats.emc_mhz is None
    assert stats.swap_used_mb == 286 and stats.temps["tj"] == pytest.approx(46.312)
    assert stats.rails_mw["VDD_CPU_GPU_CV"] == (436, 436) and stats.total_power_w == pytest.approx(4.968)
    metrics = {s.metric for s in to_samples(stats, 0.0)}
    assert "jetson.emc.util" not in metrics and "jetson.power" in metrics


def test_two_gpcs_and_absent_sensors():
    nx = parse_line(lines("orin_nx_gr3d2.txt")[0])
    assert nx.gpu == {"GR3D": (0.0, 305.0), "GR3D2": (0.0, 0.0)} and nx.cpu[-1] == (None, None)
    assert "VIC" not in nx.rails_mw
    agx = parse_line(lines("agx_orin_jp5.txt")[0])
    assert "cv0" not in agx.temps and "gpu" not in agx.temps  # -256C: sensor absent
    assert set(agx.rails_mw) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}
    assert agx.total_power_w == pytest.approx((2399 + 400 + 4032 + 301) / 1000)


def test_line_without_rails_has_no_power():
    stats = parse_line(lines("agx_orin_no_rails.txt")[0])
    assert stats.rails_mw == {} and stats.total_power_w is None
    assert not any(s.metric.endswith("power") for s in to_samples(stats, 0.0))


def test_gpc_frequency_array():
    stats = parse_line(lines("agx_orin_jp6_gpc_array.txt")[0])
    assert stats.gpu == {"GR3D": (0.0, 0.0)} and stats.emc_mhz == 2133


def test_garbage_is_empty_not_an_error():
    stats = parse_line("tegrastats: command not found")
    assert stats.cpu == [] and stats.rails_mw == {} and to_samples(stats, 0.0) == []


def test_not_a_jetson_here_says_why(tmp_path):
    reason = board.unavailable_reason(tmp_path / "nv_tegra_release")
    if reason is None:
        pytest.skip("this machine has tegrastats")
    assert reason.startswith("not a Jetson (no ") and "tegrastats" in reason


def test_dla_cores_are_counted_from_the_device_tree(tmp_path):
    (tmp_path / "15880000.nvdla0").mkdir()
    (tmp_path / "bus@0" / "158c0000.nvdla1").mkdir(parents=True)
    (tmp_path / "17000000.gpu").mkdir()
    assert board.dla_cores(tmp_path) == 2
    assert board.dla_cores(tmp_path / "missing") == 0


def test_release_line(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n")
    assert board.l4t_release(release).startswith("R35 (release), REVISION: 4.1")
