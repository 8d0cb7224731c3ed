"""Plugin discovery never crashes: broken plugins become statuses, dispatch reaches one plugin."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from dk.errors import PluginNotFound, StageNotImplemented
from dk.plugins import PluginManager

GOOD = """
from dk.hooks import hookimpl
from dk.specs import PluginInfo

@hookimpl
def dk_describe(probe):
    return PluginInfo(name="good", kind="engine")

@hookimpl
def dk_export(request):
    return "good-export"
"""
OTHER = """
from dk.hooks import hookimpl

@hookimpl
def dk_export(request):
    return "other-export"
"""
RAISES = "raise RuntimeError('boom at import')\n"
MISSING_DEP = "import not_a_real_library_xyz\n"
MISSPELT = """
from dk.hooks import hookimpl

@hookimpl
def dk_exprot(request):
    return None
"""
WRAPPER = """
from dk.hooks import hookimpl
seen = []

@hookimpl(wrapper=True)
def dk_export(request):
    seen.append(request)
    return (yield)
"""


def _manager(tmp_path, monkeypatch, **modules: str) -> PluginManager:
    eps = []
    for name, source in modules.items():
        module = f"fakeplugin_{name}_{tmp_path.name}"
        (tmp_path / f"{module}.py").write_text(source)
        eps.append(metadata.EntryPoint(name=name, value=module, group="dk"))
    monkeypatch.syspath_prepend(str(tmp_path))
    return PluginManager(entry_points=eps)


def test_broken_plugins_get_statuses_and_good_ones_still_load(tmp_path, monkeypatch):
    manager = _manager(tmp_path, monkeypatch, good=GOOD, raises=RAISES, missing=MISSING_DEP, misspelt=MISSPELT)
    records = {r.name: r for r in manager.load_all()}
    assert records["good"].status == "ok"
    assert records["raises"].status == "import-error"
    assert "boom at import" in records["raises"].error
    assert records["missing"].status == "missing-dependency"
    assert "pip install not_a_real_library_xyz" in records["missing"].error
    assert records["misspelt"].status == "incompatible-hooks"
    assert "dk_exprot" in records["misspelt"].error
    assert manager.call_stage("good", "export", request=None) == "good-export"


def test_strict_mode_reraises_import_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DK_STRICT_PLUGINS", "1")
    manager = _manager(tmp_path, monkeypatch, raises=RAISES)
    with pytest.raises(RuntimeError, match="boom at import"):
        manager.load("raises")


def test_dk_load_plugins_restricts_discovery(tmp_path, monkeypatch):
    monkeypatch.setenv("DK_LOAD_PLUGINS", "good")
    manager = _manager(tmp_path, monkeypatch, good=GOOD, raises=RAISES)
    assert manager.names() == ["good"]
    with pytest.raises(PluginNotFound, match="DK_LOAD_PLUGINS restricts"):
        manager.get("raises")


def test_plugins_load_only_on_demand(tmp_path, monkeypatch):
    manager = _manager(tmp_path, monkeypatch, good=GOOD, raises=RAISES)
    manager.get("good")
    assert manager.records["raises"].status == "not-loaded"
    assert not any(name.startswith("fakeplugin_raises") for name in sys.modules)


def test_stage_is_dispatched_to_the_named_plugin_only(tmp_path, monkeypatch):
    manager = _manager(tmp_path, monkeypatch, good=GOOD, other=OTHER)
    assert manager.call_stage("good", "export", request=None) == "good-export"
    assert manager.call_stage("other", "export", request=None) == "other-export"


def test_wrappers_of_other_plugins_see_dispatched_calls(tmp_path, monkeypatch):
    manager = _manager(tmp_path, monkeypatch, good=GOOD, wrapper=WRAPPER)
    manager.load_all()
    assert manager.call_stage("good", "export", request="req-1") == "good-export"
    assert manager.records["wrapper"].plugin.seen == ["req-1"]


def test_unknown_plugin_names_the_installed_ones(tmp_path, monkeypatch):
    manager = _manager(tmp_path, monkeypatch, good=GOOD)
    with pytest.raises(PluginNotFound, match=r"no plugin named 'nope'.*installed plugins: good"):
        manager.call_stage("nope", "export", request=None)


def test_broken_plugin_used_by_name_says_why(tmp_path, monkeypatch):
    manager = _manager(tmp_path, monkeypatch, raises=RAISES)
    with pytest.raises(PluginNotFound, match=r"failed to load \(import-error\).*boom at import"):
        manager.get("raises")


def test_stage_not_implemented_is_a_clear_error(tmp_path, monkeypatch):
    manager = _manager(tmp_path, monkeypatch, other=OTHER)
    with pytest.raises(StageNotImplemented, match="plugin 'other' does not implement stage 'quantize'"):
        manager.call_stage("other", "quantize", request=None)


def test_core_plugin_answers_classification_postprocess():
    manager = PluginManager(entry_points=[])
    import numpy as np

    results = manager.hook.dk_postprocess(
        task="classification", outputs={"logits": np.array([[0.0, 3.0, 1.0]], np.float32)}, meta={"labels": ["a", "b", "c"]}
    )
    assert [c["label"] for c in results[0]["top_k"]] == ["b", "c", "a"]
    assert results[0]["top_k"][0]["score"] == pytest.approx(np.exp(3) / (1 + np.exp(3) + np.exp(1)), rel=1e-6)
    assert manager.hook.dk_postprocess(task="segmentation", outputs={}, meta={}) is None


def test_core_collects_real_host_stats():
    samples = PluginManager(entry_points=[]).hook.dk_collect_hw_stats()
    by_metric = {s.metric: s for group in samples for s in group}
    assert by_metric["process.rss"].value > 10  # MiB: a Python process is never smaller
    assert 0 <= by_metric["cpu.util"].value <= 100
