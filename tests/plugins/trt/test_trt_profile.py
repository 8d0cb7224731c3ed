"""Per-layer profile rows and the profiling_verbosity build option, checked without TensorRT."""

from __future__ import annotations

import attrs
import pytest

from dk.errors import UsageError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest
from dk_trt.export import prepare_export
from dk_trt.options import PROFILING_VERBOSITIES, parse_profiling_verbosity, settings_json
from dk_trt.profile import LayerTime, summarize
from dk_trt.runtime import TrtEngine


def test_layer_times_are_summed_averaged_and_sorted_slowest_first():
    rows = summarize({"conv1 + relu1": [0.5, 0.3], "fc": [0.1, 0.1], "softmax": [0.6, 0.4], "unused": []})
    assert [r.layer for r in rows] == ["softmax", "conv1 + relu1", "fc"]
    assert rows[0] == LayerTime("softmax", pytest.approx(0.5), pytest.approx(1.0), pytest.approx(50.0), 2)
    assert rows[1].mean_ms == pytest.approx(0.4) and rows[2].percent == pytest.approx(10.0)
    assert sum(r.percent for r in rows) == pytest.approx(100.0)
    assert attrs.asdict(rows[2]) == {"layer": "fc", "mean_ms": pytest.approx(0.1), "total_ms": pytest.approx(0.2),
                                     "percent": pytest.approx(10.0), "calls": 2}
    assert summarize({}) == []


def test_ties_are_ordered_by_name_and_the_engine_offers_profile_layers():
    assert [r.layer for r in summarize({"b": [1.0], "a": [1.0]})] == ["a", "b"]
    assert callable(getattr(TrtEngine, "profile_layers", None))  # dk run bench --profile-layers looks for it


def request(tmp_path, **options) -> ExportRequest:
    return ExportRequest(source=parse_model_arg(None), out_dir=tmp_path, precision="fp16", options=options)


def test_profiling_verbosity_defaults_to_tensorrts_and_enters_the_cache_key(tmp_path):
    default = prepare_export(request(tmp_path)).settings
    detailed = prepare_export(request(tmp_path, profiling_verbosity="DETAILED")).settings
    assert (default.profiling_verbosity, detailed.profiling_verbosity) == ("layer_names_only", "detailed")
    assert settings_json(detailed)["profiling_verbosity"] == "detailed"
    assert settings_json(default) != settings_json(detailed)  # another plan, so another cache entry
    assert [parse_profiling_verbosity(v) for v in ("", None, "none")] == ["layer_names_only", "layer_names_only", "none"]
    assert PROFILING_VERBOSITIES[0] == "layer_names_only"


def test_unknown_profiling_verbosity_is_refused(tmp_path):
    with pytest.raises(UsageError, match=r"^option profiling_verbosity=verbose is not one of layer_names_only, "
                                         r"detailed, none$"):
        prepare_export(request(tmp_path, profiling_verbosity="verbose"))
