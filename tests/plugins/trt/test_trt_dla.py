"""DLA cores for the trt plugin: counted by the Jetson platform plugin when it is installed (fake
sysfs/device-tree roots), by the module name without it, and ``dla_core=N`` checked against the count."""

from __future__ import annotations

import functools
import sys

import pytest

from dk import api
from dk.errors import DkError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest
from dk_trt import export
from dk_trt.jetson import PLUGIN_SOURCE, dla_count, dla_refusal, jetson_board
from dk_trt.options import check_dla

ORIN = b"NVIDIA Jetson AGX Orin Developer Kit\x00"
XAVIER_NX = b"NVIDIA Jetson Xavier NX Developer Kit\x00"
NANO = b"NVIDIA Jetson Nano Developer Kit\x00"
ORIN_NANO = b"NVIDIA Jetson Orin Nano Developer Kit\x00"


@pytest.fixture
def without_jetson_plugin(monkeypatch):
    """dk-plugin-jetson as if it were not installed: importing dk_jetson.board fails."""
    monkeypatch.setitem(sys.modules, "dk_jetson.board", None)
    assert jetson_board() is None


@pytest.fixture
def with_jetson_plugin():
    pytest.importorskip("dk_jetson.board", reason="needs dk-plugin-jetson (pip install ./plugins/jetson)")


def test_orin_with_two_dlas_is_counted_by_the_jetson_plugin(tmp_path, fake_jetson, with_jetson_plugin):
    orin = fake_jetson(tmp_path, ORIN, dla=2)
    count = dla_count(orin)
    assert (count.cores, count.source, count.model) == (2, PLUGIN_SOURCE, "NVIDIA Jetson AGX Orin Developer Kit")
    assert count.as_details() == {"dla_cores": 2, "dla_source": PLUGIN_SOURCE}
    assert dla_refusal(orin, core=0) is None and dla_refusal(orin, core=1) is None


def test_xavier_on_l4t32_keeps_its_dlas_outside_platform(tmp_path, fake_jetson, with_jetson_plugin):
    xavier = fake_jetson(tmp_path, XAVIER_NX, dla=2, dla_dir="13e10000.host1x")
    assert dla_count(xavier).cores == 2


def test_nano_and_orin_nano_have_no_dla(tmp_path, fake_jetson, with_jetson_plugin):
    for name, model in (("nano", NANO), ("orin_nano", ORIN_NANO)):
        root = fake_jetson(tmp_path / name, model)
        assert dla_count(root).cores == 0
        name = model.rstrip(b"\x00").decode()
        assert dla_refusal(root, core=0) == f"{name} has no DLA cores (counted by {PLUGIN_SOURCE}): drop dla_core"


def test_a_machine_that_is_not_a_jetson_has_none(tmp_path, with_jetson_plugin):
    count = dla_count(tmp_path)
    assert (count.cores, count.model) == (0, None) and count.source.startswith("dk-plugin-jetson: not a Jetson")
    assert "is not a Jetson: drop dla_core" in dla_refusal(tmp_path, core=0)


def test_dla_core_beyond_the_count_is_one_error_naming_the_count(tmp_path, fake_jetson, with_jetson_plugin):
    orin = fake_jetson(tmp_path / "orin", ORIN, dla=2)
    with pytest.raises(DkError, match=r"^dla_core=2: NVIDIA Jetson AGX Orin Developer Kit has 2 DLA core\(s\) "
                                      r"\(counted by dk-plugin-jetson: nvdla devices under /sys/devices\): use "
                                      r"dla_core=0\.\.1$"):
        check_dla(2, "fp16", dla_refusal(orin, core=2))
    one = fake_jetson(tmp_path / "orin_nx_8gb", b"NVIDIA Orin NX 8GB\x00", dla=1)
    assert dla_refusal(one, core=1).endswith("has 1 DLA core(s) (counted by " + PLUGIN_SOURCE + "): use dla_core=0")


def test_export_checks_dla_core_against_the_device_before_tensorrt(tmp_path, fake_jetson, monkeypatch,
                                                                   with_jetson_plugin):
    orin = fake_jetson(tmp_path / "root", ORIN, dla=2)
    monkeypatch.setattr(export, "dla_refusal", functools.partial(dla_refusal, orin))
    def request(core: str) -> ExportRequest:
        return ExportRequest(source=parse_model_arg(None), out_dir=tmp_path / "out", precision="fp16",
                             options={"dla_core": core})

    with pytest.raises(DkError, match=r"dla_core=3: .* has 2 DLA core\(s\)"):
        api.export("trt", request("3"))
    prepared = export.prepare_export(request("1"))
    assert prepared.settings.dla_core == 1 and prepared.name.endswith("_fp16_batch1_dla_enabled")  # DLA builds a static batch


def test_without_the_jetson_plugin_the_module_name_decides(tmp_path, fake_jetson, without_jetson_plugin):
    orin = fake_jetson(tmp_path / "orin", ORIN)  # no sysfs needed: the name says Orin
    count = dla_count(orin)
    assert count.cores is None and count.model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert "TensorRT counts them" in count.source and dla_refusal(orin, core=5) is None  # TensorRT checks at build
    assert dla_count(orin, builder_cores=2) == type(count)(2, "TensorRT builder.num_DLA_cores", count.model)
    nano = fake_jetson(tmp_path / "nano", ORIN_NANO)
    assert dla_count(nano).cores == 0 and "not Orin Nano" in dla_refusal(nano, core=0)
    away = dla_count(tmp_path / "empty")
    assert away.cores == 0 and away.source.startswith("dk-plugin-trt (dk-plugin-jetson is not installed): not a Jetson")


def test_doctor_probe_shows_the_count_and_its_source(monkeypatch):
    from dk_trt.versions import missing_reason

    if missing_reason() is None:
        pytest.skip("TensorRT is installed here: the probe reads the GPU too")
    details = api.describe("trt", probe=True).details
    assert details["dla_cores"] == dla_count().cores and details["dla_source"] == dla_count().source
    monkeypatch.setitem(sys.modules, "dk_jetson.board", None)
    if dla_count().model is None:
        assert api.describe("trt", probe=True).details["dla_source"].startswith("dk-plugin-trt (dk-plugin-jetson is")
