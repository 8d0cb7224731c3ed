"""dk.json is untrusted input (issue 13): every file it names stays inside the artifact folder,
and a manifest that breaks the schema is one clear error naming the field."""

from __future__ import annotations

import json
import shutil

import pytest

from dk import api
from dk.artifacts import Artifact
from dk.cli import main
from dk.errors import ModelError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest

pytest.importorskip("onnxruntime", reason="the ort plugin exports the artifact these tests tamper with")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("manifest")
    return api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=out, options={"level": "basic"}))


@pytest.fixture
def tampered(exported, tmp_path):
    """A copy of the artifact whose manifest the test edits with ``edit(manifest)``."""
    folder = tmp_path / "art"
    shutil.copytree(exported.path, folder)

    def tamper(edit) -> object:
        manifest = json.loads((folder / "dk.json").read_text())
        edit(manifest)
        (folder / "dk.json").write_text(json.dumps(manifest))
        return folder

    return tamper


def run_dk(capsys, *args: str) -> tuple[int, str]:
    """Exit code and everything dk printed (stdout and stderr)."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _set_file_name(name):
    def edit(manifest):
        manifest["files"][0]["name"] = name
    return edit


def test_manifest_file_names_that_leave_the_folder_are_refused_by_dk_run_export(exported, tampered, tmp_path,
                                                                               capsys):
    outside = tmp_path / "secret.onnx"
    shutil.copy(exported.model_file, outside)
    tampered(lambda m: None)
    (tmp_path / "art" / "link.onnx").symlink_to(outside)
    cases = {
        str(outside): "is an absolute path",
        "../secret.onnx": "leaves the artifact folder",
        "link.onnx": "is a symlink leading out of the artifact folder",
    }
    for name, why in cases.items():
        folder = tampered(_set_file_name(name))
        with pytest.raises(ModelError, match=why):
            Artifact.load(folder)
        out = tmp_path / f"out-{len(name)}"
        code, output = run_dk(capsys, "run", "export", "--plugin", "ort", "--model", str(folder), "--out", str(out))
        assert code != 0, f"{name}: dk run export published the outside file:\n{output}"
        assert why in output and "files[0].name" in output, output
        assert "internal error" not in output and len(output.strip().splitlines()) == 1, output
        assert not (out / "ort").exists() or not any((out / "ort").iterdir()), f"{name}: something was written"


def test_a_symlink_to_a_file_inside_the_folder_is_fine(exported, tampered):
    def edit(manifest):
        manifest["files"][0]["name"] = "alias.onnx"

    folder = tampered(edit)
    (folder / "alias.onnx").symlink_to(folder / exported.model_file.name)
    assert Artifact.load(folder).model_file.name == "alias.onnx"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.pop("inputs"), "required field 'inputs' is missing"),
    (lambda m: m.update(files={"name": "x"}), "field 'files' must be a list, not an object"),
    (lambda m: m["files"][0].pop("name"), "files[0] has no 'name'"),
    (lambda m: m.update(inputs="input"), "field 'inputs' must be a list, not a string"),
    (lambda m: m["inputs"][0].update(shape="1x1x8x8"), "field 'inputs[0].shape' must be a list, not a string"),
    (lambda m: m["outputs"][0]["shape"].__setitem__(1, 1.5), "'outputs[0].shape[1]' must be an integer or a string"),
    (lambda m: m["files"][0].update(size="12"), "field 'files[0].size' must be an integer, not a string"),
    (lambda m: m["files"][0].update(sha256="abc"), "files[0].sha256 'abc' is not 64 lower-case hex digits"),
    (lambda m: m.update(model=[]), "field 'model' must be an object, not a list"),
    (lambda m: m.update(files=[]), "field 'files' is empty"),
    (lambda m: m["files"].__setitem__(0, "model.onnx"), "field 'files[0]' must be an object, not a string"),
])
def test_a_manifest_that_breaks_the_schema_names_the_field(tampered, edit, message, capsys):
    folder = tampered(edit)
    with pytest.raises(ModelError) as caught:
        Artifact.load(folder)
    assert message in str(caught.value) and str(folder / "dk.json") in str(caught.value), str(caught.value)
    code, output = run_dk(capsys, "run", "infer", "--plugin", "ort", "--artifact", str(folder))
    assert code != 0 and message in output, output
    assert "internal error" not in output and len(output.strip().splitlines()) == 1, output
