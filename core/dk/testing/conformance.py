"""The backend conformance suite: subclass :class:`BackendConformance` in a test file, set
``plugin`` and ``precisions``, and pytest runs every check below against that plugin."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from dk import api
from dk.artifacts import MANIFEST_NAME, Artifact
from dk.errors import DkError, InputError, ModelError, StageNotImplemented
from dk.plugins import MISSING_DEPENDENCY, NO_DEVICE, OK, get_plugin_manager
from dk.specs import ExportRequest, ModelSource, PluginInfo
from dk.testing.dependencies import declared_import_names
from dk.testing.probes import heavy_imports, run_cli
from dk.testing.models import (
    DefaultModelRuns, default_io, eval_split, read_only, reference_eval_outputs, top1_accuracy,
)
from dk.testing.tolerances import check_declared_outputs, compare_outputs

HEAVY_MODULES = ("torch", "tensorrt", "openvino", "onnxruntime")
REDUCED_PRECISIONS = ("fp16", "int8")


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
    #: Modules the plugin module must not import at module level; ``None``: :data:`HEAVY_MODULES`
    #: plus the import names of every dependency the plugin's distribution declares (beyond dk-core's own).
    heavy_modules: tuple[str, ...] | None = None
    #: False when the engine rebuilds its model from the recorded source instead of reading the
    #: artifact's model file (the torch engine): the plugin-side corrupt-file check is skipped.
    engine_reads_model_file: bool = True

    def _heavy_modules(self) -> tuple[str, ...]:
        if self.heavy_modules is not None:
            return tuple(self.heavy_modules)
        record = get_plugin_manager().records[self.plugin]
        own = record.module.split(":")[0].split(".")[0]
        declared = declared_import_names(record.distribution) if record.distribution else ()
        return tuple(sorted(set(HEAVY_MODULES) | {m for m in declared if m != own}))

    @pytest.fixture(scope="class")
    @classmethod
    def info(cls) -> PluginInfo:
        assert cls.plugin, f"{cls.__name__} must set the class attribute 'plugin'"
        return require_plugin(cls.plugin)

    @pytest.fixture(scope="class")
    @classmethod
    def runs(cls, info, tmp_path_factory):
        runs = DefaultModelRuns(tmp_path_factory.mktemp(f"dk-{cls.plugin}"), cls.device, cls.load_options, cls.plugin)
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
        assert (record.status, record.error) == (OK, ""), f"plugin status {record.status!r}: {record.error}"
        assert record.distribution, "the plugin's entry point should come from an installed distribution"

    def test_describe_names_the_plugin(self, info):
        assert isinstance(info, PluginInfo), f"dk_describe returned {type(info).__name__}, not PluginInfo"
        assert info.name == self.plugin, f"dk_describe names itself {info.name!r}, not {self.plugin!r}"
        assert info.status == OK and info.reason == "", f"status {info.status!r}, reason {info.reason!r}"

    def test_describe_claims_the_tested_precisions(self, info):
        missing = sorted(set(self.precisions) - set(info.precisions))
        assert not missing, f"the test claims {missing}, but dk_describe lists only {info.precisions}"

    def test_describe_without_probe_is_fast(self, info):
        start = time.perf_counter()
        api.describe(self.plugin, probe=False)
        took = time.perf_counter() - start
        assert took < self.describe_time_limit_s, (
            f"dk_describe(probe=False) took {took:.3f} s, limit {self.describe_time_limit_s} s")

    def test_import_and_describe_load_no_heavy_library(self, info):
        module = get_plugin_manager().records[self.plugin].module.split(":")[0]
        heavy = self._heavy_modules()
        proc, found = heavy_imports(self.plugin, module, heavy)
        assert proc.returncode == 0, f"importing {module} in a fresh interpreter failed:\n{proc.stderr[-2000:]}"
        assert found["import"] == [], (
            f"importing {module} imported {found['import']} at module level (checked: {list(heavy)}); "
            "import them inside the hook functions")
        assert found["describe"] in ([], None), f"dk_describe(probe=False) imported {found['describe']}"

    def test_json_stage_prints_one_json_document_on_stdout(self, info, tmp_path):
        record = get_plugin_manager().records[self.plugin]
        args = ["run", "export", "--plugin", self.plugin, "--device", self.device, "--out", str(tmp_path), "--json"]
        proc = run_cli(self.plugin, record.module, args)
        assert proc.returncode == 0, f"dk {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}"
        try:
            document = json.loads(proc.stdout)
        except ValueError as exc:
            pytest.fail(f"dk {' '.join(args)} printed more than one JSON document on stdout ({exc}); stdout "
                        f"starts {proc.stdout[:300]!r}. Something (the plugin or its library, maybe from C) "
                        "writes to stdout: send it to stderr")
        assert isinstance(document, dict) and "artifact" in document, f"--json printed {proc.stdout[:300]!r}"

    # -- export, load and infer on the default model ----------------------------------------

    def test_export_writes_manifest_and_model_file(self, runs):
        artifact = runs.artifact(self.plugin)
        assert (artifact.path / MANIFEST_NAME).is_file(), f"{artifact.path} has no {MANIFEST_NAME}"
        assert artifact.model_file.is_file() and artifact.model_file.stat().st_size > 0, (
            f"model file {artifact.model_file} is missing or empty")
        reloaded = Artifact.load(artifact.path)
        assert (reloaded.plugin, reloaded.precision) == (self.plugin, "fp32"), (
            f"manifest says plugin {reloaded.plugin!r} precision {reloaded.precision!r}")
        want_in, want_out = [s.name for s in default_io()[0]], [s.name for s in default_io()[1]]
        assert [s.name for s in reloaded.inputs] == want_in, f"manifest inputs {reloaded.inputs}, want {want_in}"
        assert [s.name for s in reloaded.outputs] == want_out, f"manifest outputs {reloaded.outputs}, want {want_out}"

    def test_second_export_reuses_the_cached_artifact(self, runs):
        first = runs.artifact(self.plugin)
        again = runs.build(self.plugin)
        assert again.reused and again.path == first.path, (
            f"second export: reused={again.reused}, path {again.path} (first {first.path})")

    def test_engine_describes_its_inputs_and_outputs(self, runs):
        engine = runs.engine(self.plugin)
        (want_in,), (want_out,) = default_io()
        assert (len(engine.inputs), len(engine.outputs)) == (1, 1), (
            f"engine declares inputs {engine.inputs} and outputs {engine.outputs}; the default model has one each")
        (got_in,), (got_out,) = engine.inputs, engine.outputs
        assert (got_in.name, got_in.dtype, got_in.shape[1:]) == (want_in.name, "float32", (1, 8, 8)), (
            f"engine input {got_in}, want {want_in.name!r} float32 [*, 1, 8, 8]")
        assert (got_out.name, len(got_out.shape), got_out.shape[-1]) == (want_out.name, 2, 10), (
            f"engine output {got_out}, want {want_out.name!r} [*, 10]")

    def test_outputs_have_the_declared_dtypes_and_shapes(self, runs):
        engine = runs.engine(self.plugin)
        spec = engine.inputs[0]
        batch = spec.shape[0] if isinstance(spec.shape[0], int) else 4
        x = read_only(np.ascontiguousarray(eval_split()[0][:batch], dtype=np.dtype(spec.dtype)))
        outputs = engine.infer({spec.name: x})
        wrong = check_declared_outputs(outputs, engine.outputs, batch=batch)
        assert not wrong, "outputs differ from what the engine declares (nothing was cast): " + "; ".join(wrong)
        extra = sorted(set(outputs) - {s.name for s in engine.outputs})
        assert not extra, f"the engine returned outputs it does not declare: {extra}"

    def test_engine_leaves_its_inputs_unchanged(self, runs):
        engine = runs.engine(self.plugin)
        spec = engine.inputs[0]
        batch = spec.shape[0] if isinstance(spec.shape[0], int) else 4
        pristine = np.ascontiguousarray(eval_split()[0][:batch], dtype=np.dtype(spec.dtype))
        writable = pristine.copy()
        engine.infer({spec.name: writable})
        changed = np.count_nonzero(writable != pristine)
        assert changed == 0, (
            f"the engine modified the caller's input {spec.name!r} in place: {changed} of {writable.size} "
            f"elements changed (max change {float(np.max(np.abs(writable - pristine))):.3g}); copy it first")
        try:
            engine.infer({spec.name: read_only(pristine)})
        except ValueError as exc:
            pytest.fail(f"the engine cannot take a read-only input array ({exc}); never write into inputs")

    def test_fp32_accuracy_on_eval_split(self, runs):
        accuracy = top1_accuracy(runs.eval_outputs(self.plugin), eval_split()[1])
        assert accuracy >= self.min_accuracy, (
            f"fp32 top-1 accuracy {accuracy:.4f} on the eval split < {self.min_accuracy} "
            f"(short by {self.min_accuracy - accuracy:.4f})")

    def test_fp32_matches_reference_evaluator(self, runs):
        declared = runs.engine(self.plugin).outputs
        result = compare_outputs(reference_eval_outputs(), runs.eval_outputs(self.plugin), "fp32", declared=declared)
        assert result.passed, result.summary()

    def test_stage_infer_matches_engine_infer(self, runs):
        engine = runs.engine(self.plugin)
        feeds = {engine.inputs[0].name: read_only(eval_split()[0][:4])}
        staged, direct = api.infer(self.plugin, engine, feeds), engine.infer(feeds)
        assert sorted(staged) == sorted(direct), f"dk_infer returned {sorted(staged)}, Engine.infer {sorted(direct)}"
        for name in direct:
            np.testing.assert_array_equal(staged[name], direct[name],
                                          err_msg=f"dk_infer and Engine.infer differ on output {name!r}")

    @pytest.mark.parametrize("precision", REDUCED_PRECISIONS)
    def test_reduced_precision_keeps_accuracy(self, runs, precision):
        self._require_precision(precision)
        built = runs.artifact(self.plugin, precision).precision
        assert built == precision, f"asked for {precision}, the manifest says {built}"
        labels = eval_split()[1]
        fp32 = top1_accuracy(runs.eval_outputs(self.plugin), labels)
        reduced = top1_accuracy(runs.eval_outputs(self.plugin, precision), labels)
        assert reduced >= fp32 - self.max_accuracy_drop, (
            f"{precision} accuracy {reduced:.4f} vs fp32 {fp32:.4f}: drop {fp32 - reduced:.4f} > "
            f"{self.max_accuracy_drop}")

    @pytest.mark.parametrize("precision", REDUCED_PRECISIONS)
    def test_reduced_precision_matches_reference(self, runs, precision):
        self._require_precision(precision)
        candidate = runs.eval_outputs(self.plugin, precision)
        declared = runs.engine(self.plugin, precision).outputs
        result = compare_outputs(reference_eval_outputs(), candidate, precision, declared=declared)
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
        try:
            engine.infer(feeds)
        except InputError:
            return
        except Exception as exc:
            pytest.fail(f"{case} feeds raised {type(exc).__name__}: {exc}; expected dk.errors.InputError")
        pytest.fail(f"{case} feeds were accepted; expected dk.errors.InputError")

    def test_corrupt_model_file_fails_to_load_with_model_error(self, runs, tmp_path):
        copy = tmp_path / "corrupt"
        shutil.copytree(runs.artifact(self.plugin).path, copy)
        artifact = Artifact.load(copy)
        data = artifact.model_file.read_bytes()
        artifact.model_file.write_bytes(data[: len(data) // 2])
        self._expect_model_error(artifact, "a truncated model file (sha256 differs from dk.json)")

    @pytest.mark.parametrize("damage", ["truncated", "garbage"])
    def test_plugin_itself_rejects_a_corrupt_model_file(self, runs, tmp_path, damage):
        """The manifest is updated to the damaged bytes, so dk's sha256 check passes and the
        plugin's own loader meets the corrupt file."""
        if not self.engine_reads_model_file:
            pytest.skip(f"{type(self).__name__}.engine_reads_model_file is False: the engine does not read it")
        copy = tmp_path / "corrupt"
        shutil.copytree(runs.artifact(self.plugin).path, copy)
        manifest = json.loads((copy / MANIFEST_NAME).read_text())
        model = copy / manifest["files"][0]["name"]
        data = model.read_bytes()
        model.write_bytes(data[: len(data) // 2] if damage == "truncated" else bytes(range(256)) * 8)
        from dk.artifacts import sha256_file

        manifest["files"][0].update(sha256=sha256_file(model), size=model.stat().st_size)
        (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
        artifact = Artifact.load(copy)
        artifact.verify()  # dk's own check passes: what follows is the plugin's
        self._expect_model_error(artifact, f"a {damage} model file whose sha256 matches dk.json")

    def _expect_model_error(self, artifact: Artifact, what: str) -> None:
        try:
            engine = api.load_engine(self.plugin, artifact, self.device, self.load_options)
        except ModelError:
            return
        except Exception as exc:
            pytest.fail(f"loading {what} raised {type(exc).__name__}: {exc}; expected dk.errors.ModelError")
        try:
            name = engine.inputs[0].name
            engine.infer({name: read_only(eval_split()[0][:1])})
        except ModelError:
            return
        except Exception as exc:
            pytest.fail(f"{what} loaded, then infer raised {type(exc).__name__}: {exc}; expected "
                        "dk.errors.ModelError at load")
        finally:
            engine.close()
        pytest.fail(f"{what} loaded and ran without a ModelError")

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
        try:
            api.export(self.plugin, request)
        except ModelError:
            return
        except Exception as exc:
            pytest.fail(f"exporting a {kind} ONNX file raised {type(exc).__name__}: {exc}; expected ModelError")
        pytest.fail(f"exporting a {kind} ONNX file succeeded; expected dk.errors.ModelError")

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
        result = compare_outputs(reference, candidate, precision, declared=runs.engine(self.plugin, precision).outputs)
        assert result.passed, result.summary()
