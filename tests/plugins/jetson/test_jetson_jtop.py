"""jtop as the Jetson statistics source: its documented properties -> the tegrastats metric names and
units, and the choice between jtop and tegrastats (with the reason) when jtop is absent or silent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dk import api
from dk_jetson import source
from dk_jetson.jtop_reader import to_samples
from dk_jetson.tegrastats import parse_line
from dk_jetson.tegrastats import to_samples as tegrastats_samples

FIXTURES = Path(__file__).parent / "fixtures"


def snapshot(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def values(samples) -> dict[str, tuple[float, str]]:
    return {s.metric: (pytest.approx(s.value), s.unit) for s in samples}


def test_orin_snapshot_gives_the_same_series_as_tegrastats_on_the_same_board():
    jtop = {s.metric: s for s in to_samples(snapshot("jtop_agx_orin_jp5.json"), 5.0)}
    text = (FIXTURES / "agx_orin_jp5.txt").read_text().splitlines()
    line = next(t for t in text if t and not t.startswith("#"))
    tegra = {s.metric: s for s in tegrastats_samples(parse_line(line), 5.0)}
    # tegrastats lists the second GPC as GR3D2; jtop reports it inside the one GPU's freq["GPC"]
    assert set(jtop) == set(tegra) - {"jetson.gpu2.util", "jetson.gpu2.freq"}
    for metric, sample in jtop.items():
        assert sample.unit == tegra[metric].unit and sample.source == "jetson" and sample.timestamp == 5.0
        assert sample.value == pytest.approx(tegra[metric].value, abs=1.0), metric  # tegrastats truncates MHz
    assert jtop["jetson.ram_used"].value == 1282.0 and jtop["jetson.power"].value == pytest.approx(7.132)
    assert "jetson.temp.gpu" not in jtop and "jetson.temp.cv0" not in jtop  # offline sensors (-256)


def test_input_rail_moved_into_the_total_is_a_rail_again_and_offline_cores_are_skipped():
    got = values(to_samples(snapshot("jtop_orin_nx_busy.json"), 0.0))
    assert got["jetson.rail.VDD_IN"] == (pytest.approx(11.89), "W") and got["jetson.power"] == (11.89, "W")
    assert got["jetson.rail.VDD_SOC"] == (2.21, "W") and got["jetson.rail.VDD_CPU_GPU_CV"] == (5.12, "W")
    assert got["jetson.gpu.util"] == (97.3, "%") and got["jetson.gpu.freq"] == (918.0, "MHz")
    assert got["jetson.emc.util"] == (41.0, "%") and got["jetson.emc.freq"] == (3199.0, "MHz")
    assert got["jetson.cpu3.util"] == (18.0, "%") and got["jetson.cpu3.freq"] == (1984.0, "MHz")
    assert got["jetson.cpu.util"] == ((11 + 13 + 9 + 18) / 4, "%")  # the four online cores
    assert not any(m.startswith(("jetson.cpu4.", "jetson.cpu5.")) for m in got)
    assert got["jetson.swap_used"] == (430.0, "MiB") and got["jetson.temp.tj"] == (53.0, "C")


def test_missing_power_emc_and_gpu_give_no_such_series():
    got = values(to_samples(snapshot("jtop_orin_nano_no_rails.json"), 0.0))
    assert not any(m.startswith(("jetson.rail.", "jetson.power", "jetson.emc.", "jetson.gpu")) for m in got)
    assert got["jetson.cpu0.util"] == (2.0, "%") and got["jetson.cpu5.freq"] == (729.6, "MHz")
    assert {m for m in got if m.startswith("jetson.temp.")} == {"jetson.temp.cpu", "jetson.temp.gpu",
                                                                   "jetson.temp.tj"}


def test_empty_or_odd_snapshots_are_empty_not_errors():
    assert to_samples({}, 0.0) == []
    odd = {"cpu": {"cpu": [{"online": True, "idle": "n/a"}]}, "memory": {"RAM": {"used": None}},
           "power": {"rail": {"VDD_IN": None}, "tot": {}}, "temperature": {"CPU": None}, "gpu": {"gpu": {}}}
    assert to_samples(odd, 0.0) == []


def test_without_jetson_stats_tegrastats_is_used_and_the_reason_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)  # `from jtop import jtop` raises ImportError
    chosen = source.select_source(tegrastats_problem=None)
    assert chosen.kind == "tegrastats" and chosen.sample is source.tegrastats_sample
    assert chosen.reason.startswith("jtop is not installed") and "pip install 'dk-plugin-jetson[jtop]'" in chosen.reason
    assert chosen.reason.endswith(": using tegrastats")
    neither = source.select_source(tegrastats_problem="tegrastats is not on PATH")
    assert neither.kind == "none" and neither.samples() == []
    assert neither.reason.endswith("; and tegrastats is not on PATH")
    preview = source.preview_source(None)
    assert preview.kind == "tegrastats" and preview.reason.startswith("jtop is not installed")


def test_jtop_service_that_does_not_answer_falls_back_to_tegrastats_with_its_message():
    def connect():  # what jetson-stats raises when /run/jtop.sock is missing (jtop/jtop.py, start())
        raise ConnectionRefusedError(111, "Connection refused")

    chosen = source.select_source(tegrastats_problem=None, connect=connect)
    assert chosen.kind == "tegrastats"
    assert chosen.reason == ("jtop is installed but its service did not answer ([Errno 111] Connection refused): "
                             "using tegrastats")


def test_real_jtop_without_its_service_falls_back_here():
    pytest.importorskip("jtop", reason="needs jetson-stats (pip install 'dk-plugin-jetson[jtop]')")
    if source.JTOP_SOCKET.exists():
        pytest.skip("a jtop service runs on this machine")
    chosen = source.select_source(tegrastats_problem=None)
    assert chosen.kind == "tegrastats"
    assert "its service did not answer (The jtop.service is not active" in chosen.reason


def test_preview_reads_the_socket_only(tmp_path):
    pytest.importorskip("jtop", reason="needs jetson-stats (pip install 'dk-plugin-jetson[jtop]')")
    sock = tmp_path / "jtop.sock"
    missing = source.preview_source(None, socket=sock)
    assert missing.kind == "tegrastats" and f"service is not running (no {sock}" in missing.reason
    sock.touch()
    present = source.preview_source(None, socket=sock)
    assert present.kind == "jtop" and present.sample is None and "--probe connects" in present.reason


class _Client:
    """Stands in for a connected ``jtop`` object at the connect seam: the documented properties only."""

    def __init__(self, data: dict):
        self.cpu, self.power, self.temperature = data["cpu"], data["power"], data["temperature"]
        self.memory, self.gpu = data["memory"], data["gpu"]
        self.running, self.closed = True, False

    def ok(self, spin: bool = False) -> bool:
        return self.running

    def close(self) -> None:
        self.closed = True


def test_answering_jtop_is_used_and_its_snapshot_converted():
    data = snapshot("jtop_orin_nx_busy.json")
    client = _Client(data)
    chosen = source.select_source(tegrastats_problem="tegrastats is not on PATH", connect=lambda: client)
    assert (chosen.kind, chosen.reason) == ("jtop", "jtop's service answered")
    assert chosen.samples(7.0) == to_samples(data, 7.0)
    client.running = False
    with pytest.raises(Exception, match="the jtop client stopped"):
        chosen.samples(8.0)
    probed = source.select_source(None, connect=lambda: _Client(data), close=True)
    assert probed.kind == "jtop" and probed.samples() == []


def test_off_jetson_no_source_is_tried_and_doctor_says_why(monkeypatch):
    from dk_jetson import board

    if board.is_jetson():
        pytest.skip("this machine is a Jetson")
    monkeypatch.setattr(source, "_active", None)
    chosen = source.active()
    assert chosen.kind == "none" and chosen.reason.startswith("not a Jetson") and chosen.samples() == []
    info = api.describe("jetson", probe=True)
    assert (info.available, info.status) == (False, "no-device") and info.reason.startswith("not a Jetson")
