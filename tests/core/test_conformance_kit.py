"""The conformance kit catches deliberately broken engines (issue 13): each variant in
tests/core/kit_variants breaks one rule, runs the kit in a child pytest, and must fail exactly the
check for that rule, with a message saying what and by how much; the correct variant passes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

pytest.importorskip("onnxruntime", reason="the kit's test variants run on onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
#: name -> module:attribute; every variant comes from the distribution "dk-kit-variants", whose
#: metadata (written by the fixture) declares onnxruntime and pillow (its "engine libraries").
VARIANTS = {
    "kit-good": "tests.core.kit_variants.base:good",
    "kit-float64": "tests.core.kit_variants.base:float64",
    "kit-inplace": "tests.core.kit_variants.base:inplace",
    "kit-unwrapped": "tests.core.kit_variants.base:unwrapped",
    "kit-heavy": "tests.core.kit_variants.heavy:plugin",
    "kit-noisy": "tests.core.kit_variants.noisy:plugin",
}
REGISTER = textwrap.dedent("""
    import importlib
    from dk.plugins import PluginRecord, get_plugin_manager

    def register(name, module):
        path, _, attr = module.partition(":")
        manager = get_plugin_manager()
        manager.records[name] = PluginRecord(name=name, module=module, distribution="dk-kit-variants", version="0")
        manager.register(getattr(importlib.import_module(path), attr), name)
""")


def child_env(site: Path) -> dict[str, str]:
    """The environment of a child process: the repository (for the variants) and ``site`` (the
    variants' distribution metadata) on its path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(site), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding the metadata of the distribution "dk-kit-variants" (no code)."""
    folder = tmp_path_factory.mktemp("site")
    info = folder / "dk_kit_variants-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dk-kit-variants\nVersion: 0\n"
                                   "Requires-Dist: dk-core\nRequires-Dist: onnxruntime\nRequires-Dist: pillow\n")
    return folder


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory, site) -> dict[str, dict[str, str]]:
    """Run the kit against every variant in one child pytest; {variant: {test: 'passed'|failure text}}."""
    folder = tmp_path_factory.mktemp("kit")
    lines = [REGISTER, "from dk.testing import BackendConformance", ""]
    for name, module in VARIANTS.items():
        cls = "Test_" + name.replace("-", "_")
        lines += [f"register({name!r}, {module!r})", f"class {cls}(BackendConformance):", f"    plugin = {name!r}", ""]
    (folder / "test_variants.py").write_text("\n".join(lines))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--junitxml=kit.xml",
         "-k", "not parity_with_reference and not matches_torch_engine", "test_variants.py"],
        cwd=folder, env=child_env(site), capture_output=True, text=True, timeout=900,
    )
    results: dict[str, dict[str, str]] = {name: {} for name in VARIANTS}
    for case in ElementTree.parse(folder / "kit.xml").iter("testcase"):
        name = case.get("classname", "").rsplit(".", 1)[-1].removeprefix("Test_").replace("_", "-")
        for problem in (*case.iter("failure"), *case.iter("error")):
            results.setdefault(name, {})[case.get("name", "")] = f"{problem.get('message', '')}\n{problem.text or ''}"
    results["_summary"] = {"stdout": proc.stdout[-3000:], "stderr": proc.stderr[-2000:]}
    return results


def failures(kit_run, name: str) -> dict[str, str]:
    return kit_run[name]


def test_a_correct_engine_passes_every_check(kit_run):
    assert failures(kit_run, "kit-good") == {}, f"{failures(kit_run, 'kit-good')}\n{kit_run['_summary']['stdout']}"


@pytest.mark.parametrize(("variant", "test", "message"), [
    ("kit-float64", "test_outputs_have_the_declared_dtypes_and_shapes",
     "output 'logits' is float64, but the engine declares float32"),
    ("kit-float64", "test_fp32_matches_reference_evaluator", "output 'logits' is float64, but the engine declares float32"),
    ("kit-inplace", "test_engine_leaves_its_inputs_unchanged",
     "the engine modified the caller's input 'input' in place: 124 of 256 elements changed (max change 0.5)"),
    ("kit-unwrapped", "test_plugin_itself_rejects_a_corrupt_model_file[truncated]", "expected dk.errors.ModelError"),
    ("kit-unwrapped", "test_plugin_itself_rejects_a_corrupt_model_file[garbage]", "expected dk.errors.ModelError"),
    ("kit-heavy", "test_import_and_describe_load_no_heavy_library",
     "importing tests.core.kit_variants.heavy imported ['PIL'] at module level"),
    ("kit-noisy", "test_json_stage_prints_one_json_document_on_stdout",
     "printed more than one JSON document on stdout"),
])
def test_the_kit_catches_each_broken_engine_with_a_message(kit_run, variant, test, message):
    found = failures(kit_run, variant)
    assert test in found, f"the kit did not catch {variant} in {test}; it failed {sorted(found)}"
    assert message in found[test], f"{variant} {test} failed with {found[test]!r}, want {message!r}"


def test_each_broken_engine_fails_only_the_checks_of_its_rule(kit_run):
    expected = {
        "kit-float64": {"test_outputs_have_the_declared_dtypes_and_shapes", "test_fp32_matches_reference_evaluator"},
        "kit-inplace": {"test_engine_leaves_its_inputs_unchanged"},
        "kit-unwrapped": {"test_plugin_itself_rejects_a_corrupt_model_file[truncated]",
                          "test_plugin_itself_rejects_a_corrupt_model_file[garbage]"},
        "kit-heavy": {"test_import_and_describe_load_no_heavy_library"},
        "kit-noisy": {"test_json_stage_prints_one_json_document_on_stdout"},
    }
    for variant, tests in expected.items():
        assert set(failures(kit_run, variant)) == tests, f"{variant}: {failures(kit_run, variant)}"


def test_the_sha256_check_alone_never_reached_the_plugin(kit_run):
    """The older corrupt-file check passes even for the engine that lets raw errors escape."""
    assert "test_corrupt_model_file_fails_to_load_with_model_error" not in failures(kit_run, "kit-unwrapped")


def test_dk_compare_fails_on_an_output_dtype_other_than_declared(tmp_path, site):
    code = REGISTER + textwrap.dedent(f"""
        import sys
        register("kit-good", {VARIANTS['kit-good']!r})
        register("kit-float64", {VARIANTS['kit-float64']!r})
        from dk.cli import main
        sys.exit(main(["compare", "--plugins", "kit-good,kit-float64,kit-good", "--out", {str(tmp_path)!r}, "--json"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(site), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0, f"dk compare exited 0 with a float64 engine:\n{proc.stdout[-2000:]}"
    import json

    report = json.loads(proc.stdout)
    float64_rows = [r for r in report["rows"] if r["engine"] == "kit-float64:fp32"]
    assert any("is float64, but the engine declares float32" in f for r in float64_rows for f in r["failures"]), report
    assert all(r["passed"] for r in report["rows"] if r["engine"] == "kit-good:fp32"), report
    assert "outside tolerance: kit-float64:fp32 (vs kit-good:fp32); first: kit-float64:fp32 logits: output " \
        "'logits' is float64, but the engine declares float32" in proc.stderr, proc.stderr
