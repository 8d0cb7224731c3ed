"""Sweep cells, runner selection and fleet target tags."""

from __future__ import annotations

import json

import pytest

from dk.bench.runners import LocalRunner, get_runner
from dk.bench.sweep import Cell, Entry, SweepPlan
from dk.bench.targets import cpu_target, parse_targets, ray_start_argument
from dk.errors import UsageError
from dk.plugins import get_plugin_manager
from tests.conftest import run_dk


def plan(**kw):
    return SweepPlan(entries=[Entry("ort", "fp32"), Entry("ort", "int8")], batches=[1, 8], **kw)


def test_cells_cover_the_plan_in_local_order():
    assert plan().cells() == [Cell(Entry("ort", "fp32"), None, (1, 8)), Cell(Entry("ort", "int8"), None, (1, 8))]
    split = plan(targets=["a", "b"]).cells(split_batches=True)
    assert [(c.target, c.entry.precision, c.batches) for c in split] == [
        ("a", "fp32", (1,)), ("a", "fp32", (8,)), ("a", "int8", (1,)), ("a", "int8", (8,)),
        ("b", "fp32", (1,)), ("b", "fp32", (8,)), ("b", "int8", (1,)), ("b", "int8", (8,))]
    assert plan(targets=["a", "b"]).total_runs == len(split) == 8
    assert split[0].artifact_group == split[1].artifact_group != split[4].artifact_group
    assert split[5].label == "ort:fp32 batch 8 @b"


def test_the_local_runner_refuses_targets():
    with pytest.raises(UsageError, match="--targets pins cells to fleet targets"):
        LocalRunner().run(plan(targets=["cuda-sm90"]), None, {}, None, print)


def test_an_unknown_runner_names_what_to_install(monkeypatch):
    monkeypatch.setenv("DK_LOAD_PLUGINS", "ort")
    with pytest.raises(UsageError, match=r"no installed plugin provides the sweep runner 'ray' \(pip install ./plugins/ray\)"):
        get_runner("ray", "auto", get_plugin_manager())
    assert get_runner(None, None, get_plugin_manager()).name == "local"


def test_target_tags():
    assert parse_targets("cuda-sm90, rpi4,dk-target:cpu-x86_64,rpi4") == ["cuda-sm90", "rpi4", "cpu-x86_64"]
    with pytest.raises(UsageError, match="'GPU 1' is not a target tag"):
        parse_targets("GPU 1")
    assert cpu_target("AMD64") == "cpu-x86_64" and cpu_target("arm64") == "cpu-aarch64"
    assert ray_start_argument(["cpu-x86_64", "cuda-sm90"]) == \
        """--resources='{"dk-target:cpu-x86_64":1,"dk-target:cuda-sm90":1}'"""


def test_doctor_prints_this_machines_ray_resources():
    result = run_dk("doctor", "--ray-resources", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["targets"][0] == cpu_target()
    assert report["resources"] == {f"dk-target:{t}": 1 for t in report["targets"]}
    plain = run_dk("doctor", "--ray-resources")
    assert plain.stdout.strip() == report["ray_start"]


def test_cli_option_mistakes_are_one_line_errors():
    shared = run_dk("run", "bench", "--plugin", "ort", "--shared-dir", "/tmp/x")
    assert shared.returncode == 2 and "--shared-dir is for sweeps on a cluster" in shared.stderr
    both = run_dk("run", "bench", "--plugin", "ort", "--ray", "auto", "--runner", "local")
    assert both.returncode == 2 and "cannot be combined with --runner local" in both.stderr
    targets = run_dk("run", "bench", "--plugin", "ort", "--targets", "rpi4")
    assert targets.returncode == 2 and "--targets pins cells to fleet targets" in targets.stderr
