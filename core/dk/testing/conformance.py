"""The backend conformance suite: subclass :class:`BackendConformance` in a test file, set
``plugin`` and ``precisions``, and pytest runs every check below against that plugin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from dk import api
from dk.artifacts import MANIFEST_NAME, Artifact
from dk.errors import DkError, InputError, ModelError, StageNotImplemented
from dk.plugins import MISSING_DEPENDENCY, NO_DEVICE, OK, get_plugin_manager
from dk.specs import ExportRequest, ModelSource, PluginInfo
from dk.testing.models import (
    DefaultModelRuns, default_io, eval_split, reference_eval_outputs, top1_accuracy,
)
from dk.testing.tolerances import compare_outputs

HEAVY_MODULES = ("torch", "tensorrt", "openvino", "onnxruntime")
REDUCED_PRECISIONS = ("fp16", "int8")
_IMPORT_PROBE = (
    "import importlib, json, os, sys\n"
    "name, module, heavy = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
    "importlib.import_module(module)\n"
    "imported = sorted(m for m in heavy if m in sys.modules)\n"
    "os.environ['DK_LOAD_PLUGINS'] = name\n"
    "from dk import api, plugins\n"
    "described = None\n"
    "if name in plugins.get_plugin_manager().records:  # not when registered in-process only\n"
    "    api.describe(name, probe=False)\n"
    "    described = sorted(m for m in heavy if m in sys.modules)\n"
    "print(json.dumps({'import': imported, 'describe': described}))\n"
)


def require_plugin(name: str) -> PluginInfo:
    """The plugin's ``dk_describe(probe=False)``; skip when it is not installed or says it cannot
    work here, fail when it is installed but broken."""
    manager = get_plugin_manager()
    if name not in manager.records:
        pytest.skip(f"plugin {name!r} is not installed (no entry point {name!r} in group 'dk')")
    record = manager.load(name)
    if record.status in (MISSING_DEPENDENCY, NO_DEVICE):
        pytest.skip(f"plugin {name!r} cannot load here ({record.status}): {record.error}")
    if record.status != OK:
        pytest.fail(f"plugin {name!r} failed to load ({record.status}): {record.error}")
    if not manager.implements(name, "dk_describe"):
        pytest.fail(f"plugin {name!r} does not implement dk_describe, which dk doctor needs")
    info = api.describe(name, probe=False)
    if not info.available:
        pytest.skip(f"plugin {name!r} reports itself unavailable ({info.status}): {info.reason}")
    return info


class BackendConformance:
    """Checks every backend plugin must pass. Class attributes say what the plugin claims."""

    plugin: str = ""
    precisions: tuple[str, ...] = ("fp32",)
    consumes_onnx: bool = True  # it exports ONNX files (ModelSource("onnx", path))
    device: str = "cpu"
    load_options: dict[str, str] = {}
    min_accuracy: float = 0.97  # the default model was trained to 0.9833
    max_accuracy_drop: float = 0.01  # fp16 and int8 against fp32
    parity_max_examples: int = 25
    parity_max_layers: int = 5
    describe_time_limit_s: float = 0.5
    heavy_modules: tuple[str, ...] = HEAVY_MODULES

    @pytest.fixture(scope="class")
    @classmethod
    def info(cls) -> PluginInfo:
        assert cls.plugin, f"{cls.__name__} must set the class attribute 'plugin'"
        return require_plugin(cls.plugin)

    @pytest.fixture(scope="class")
    @classmethod
    def runs(cls, info, tmp_path_factory):
        runs = DefaultModelRuns(tmp_path_factory.mktemp(f"dk-{cls.plugin}"), cls.device, cls.load_options)
        yield runs
        runs.close()

    def _require_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            pytest.skip(f"{type(self).__name__}.precisions does not claim {precision}")

    def _require_onnx(self) -> None:
        if not self.consumes_onnx:
            pytest.skip(f"{type(self).__name__}.consumes_onnx is False: the plugin reads no ONNX files")

    # -- registration and doctor information -----------------------------------------------

    def test_plugin_is_registered_with_status_ok(self, info):
        record = get_plugin_manager().get(self.plugin)
        assert (record.status, record.error) == (OK, "")
        assert record.distribution, "the plugin's entry point should come from an installed distribution"

    def test_describe_names_the_plugin(self, info):
        assert isinstance(info, PluginInfo)
        assert info.name == self.plugin
        assert info.status == OK and info.reason == ""

    def test_describe_claims_the_tested_precisions(self, info):
        assert set(self.precisions) <= set(info.precisions), f"describe claims {info.precisions}"

    def test_describe_without_probe_is_fast(self, info):
        start = time.perf_counter()
        api.describe(self.plugin, probe=False)
        assert time.perf_counter() - start < self.describe_time_limit_s

    def test_import_and_describe_load_no_heavy_library(self, info):
        module = get_plugin_manager().records[self.plugin].module.split(":")[0]
        proc = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE, self.plugin, module, *self.heavy_modules],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        assert found["import"] == [], f"importing {module} imported {found['import']}"
        assert found["describe"] in ([], None), f"dk_describe(probe=False) imported {found['describe']}"

    # -- export, load and infer on the default model ----------------------------------------

    def test_export_writes_manifest_and_model_file(self, runs):
        artifact = runs.artifact(self.plugin)
        assert (artifact.path / MANIFEST_NAME).is_file()
        assert artifact.model_file.is_file() and artifact.model_file.stat().st_size > 0
        reloaded = Artifact.load(artifact.path)
        assert (reloaded.plugin, reloaded.precision) == (self.plugin, "fp32")
        assert [s.name for s in reloaded.inputs] == [s.name for s in default_io()[0]]
        assert [s.name for s in reloaded.outputs] == [s.name for s in default_io()[1]]

    def test_second_export_reuses_the_cached_artifact(self, runs):
        first = runs.artifact(self.plugin)
        again = runs.build(self.plugin)
        assert again.reused and again.path == first.path

    def test_engine_describes_its_inputs_and_outputs(self, runs):
        engine = runs.engine(self.plugin)
        (want_in,), (want_out,) = default_io()
        (got_in,), (got_out,) = engine.inputs, engine.outputs
        assert (got_in.name, got_in.dtype, got_in.shape[1:]) == (want_in.name, "float32", (1, 8, 8))
        assert (got_out.name, len(got_out.shape), got_out.shape[-1]) == (want_out.name, 2, 10)

    def test_fp32_accuracy_on_eval_split(self, runs):
        accuracy = top1_accuracy(runs.eval_outputs(self.plugin), eval_split()[1])
        assert accuracy >= self.min_accuracy

    def test_fp32_matches_reference_evaluator(self, runs):
        result = compare_outputs(reference_eval_outputs(), runs.eval_outputs(self.plugin), "fp32")
        assert result.passed, result.summary()

    def test_stage_infer_matches_engine_infer(self, runs):
        engine = runs.engine(self.plugin)
        feeds = {engine.inputs[0].name: eval_split()[0][:4]}
        staged, direct = api.infer(self.plugin, engine, feeds), engine.infer(feeds)
        assert sorted(staged) == sorted(direct)
        for name in direct:
            np.testing.assert_array_equal(staged[name], direct[name])

    @pytest.mark.parametrize("precision", REDUCED_PRECISIONS)
    def test_reduced_precision_keeps_accuracy(self, runs, precision):
        self._require_precision(precision)
        assert runs.artifact(self.plugin, precision).precision == precision
        labels = eval_split()[1]
        fp32 = top1_accuracy(runs.eval_outputs(self.plugin), labels)
        reduced = top1_accuracy(runs.eval_outputs(self.plugin, precision), labels)
        assert reduced >= fp32 - self.max_accuracy_drop, f"{precision} {reduced:.4f} vs fp32 {fp32:.4f}"

    @pytest.mark.parametrize("precision", REDUCED_PRECISIONS)
    def test_reduced_precision_matches_reference(self, runs, precision):
        self._require_precision(precision)
        candidate = runs.eval_outputs(self.plugin, precision)
        result = compare_outputs(reference_eval_outputs(), candidate, precision)
        assert result.passed, result.summary()

    # -- clear errors on bad input -----------------------------------------------------------

    @pytest.mark.parametrize(
        "case", ["wrong-rank", "wrong-dtype", "wrong-shape", "missing-input", "extra-input"]
    )
    def test_bad_input_raises_input_error(self, runs, case):
        engine = runs.engine(self.plugin)
        name, x = engine.inputs[0].name, eval_split()[0][:2]
        feeds = {
            "wrong-rank": {name: x[0]},
            "wrong-dtype": {name: x.astype(np.float64)},
            "wrong-shape": {name: np.zeros((2, 1, 9, 8), np.float32)},
            "missing-input": {},
            "extra-input": {name: x, "extra": x},
        }[case]
        with pytest.raises(InputError):
            engine.infer(feeds)

    def test_corrupt_model_file_fails_to_load_with_model_error(self, runs, tmp_path):
        copy = tmp_path / "corrupt"
        shutil.copytree(runs.artifact(self.plugin).path, copy)
        artifact = Artifact.load(copy)
        data = artifact.model_file.read_bytes()
        artifact.model_file.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelError):
            api.load_engine(self.plugin, artifact, self.device, self.load_options).close()

    @pytest.mark.parametrize("kind", ["truncated", "text"])
    def test_bad_onnx_source_raises_model_error(self, info, tmp_path, kind):
        self._require_onnx()
        from dk.default_model import ONNX_PATH

        path = tmp_path / f"{kind}.onnx"
        if kind == "truncated":
            data = ONNX_PATH.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        else:
            path.write_text("this is a text file, not an ONNX model\n")
        source = ModelSource("onnx", str(path))
        request = ExportRequest(source=source, out_dir=tmp_path / "out", device=self.device)
        with pytest.raises(ModelError):
            api.export(self.plugin, request)

    def test_export_refuses_a_precision_the_plugin_does_not_list(self, info, tmp_path):
        """A precision missing from ``dk_describe``'s list is one clear error, and nothing is built
        (never an artifact of another precision)."""
        from dk.specs import PRECISIONS

        missing = [p for p in PRECISIONS if p not in info.precisions]
        if not info.precisions or not missing:
            pytest.skip(f"plugin {self.plugin!r} lists every precision ({', '.join(info.precisions) or 'none'})")
        for precision in missing:
            out = tmp_path / precision
            request = ExportRequest(source=ModelSource("default", "dk:digitsnet"), out_dir=out,
                                    precision=precision, device=self.device)
            with pytest.raises(DkError, match=rf"plugin {self.plugin!r} has no {precision} precision"):
                api.export(self.plugin, request)
            assert not out.exists(), f"export of {precision} left {sorted(out.rglob('*'))}"

    # -- numerical parity -------------------------------------------------------------------

    def test_parity_with_reference_on_generated_graphs(self, info, tmp_path_factory):
        self._require_onnx()
        from dk.testing.parity import check_generated_graphs

        root = tmp_path_factory.mktemp(f"dk-{self.plugin}-graphs")
        check_generated_graphs(self.plugin, root, self.device, self.load_options,
                               self.parity_max_examples, self.parity_max_layers)

    @pytest.mark.parametrize("precision", ("fp32", *REDUCED_PRECISIONS))
    def test_matches_torch_engine(self, runs, precision):
        self._require_precision(precision)
        pytest.importorskip("torch", reason="torch is not installed: no torch reference engine")
        if self.plugin == "torch":
            pytest.skip("the torch engine is the reference itself")
        record = get_plugin_manager().records.get("torch")
        if record is None or get_plugin_manager().load("torch").status != OK:
            pytest.skip("plugin 'torch' is not installed or did not load: no torch reference engine")
        try:
            reference = runs.eval_outputs("torch")
        except StageNotImplemented as exc:
            pytest.skip(f"torch reference engine unavailable: {exc}")
        candidate = runs.eval_outputs(self.plugin, precision)
        if len(reference) == len(candidate) == 1:  # compare the one output even if names differ
            reference = {next(iter(candidate)): next(iter(reference.values()))}
        result = compare_outputs(reference, candidate, precision)
        assert result.passed, result.summary()
