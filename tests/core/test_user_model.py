"""A user's own model, end to end, as a user runs it: a ``mynet/models.py`` package with a small
ResNet-like classifier in the user's folder (not on PYTHONPATH), a weights file saved with
``torch.save(state_dict)``, ``labels.txt`` and PNG images; ``dk`` runs in that folder."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("PIL", reason="Pillow is not installed (pip install pillow)")

MODELS_PY = '''
import torch
from torch import nn


class Block(nn.Module):
    """A ResNet basic block: two 3x3 conv + batch norm, with a skip connection."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


def make_net(classes=4):
    return nn.Sequential(Block(3), Block(3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, classes))
'''
LABELS = ["red", "green", "blue", "black"]
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
NORMALISE = ["--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"]


def dk(*args: str, cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    """``dk ARGS`` in ``cwd`` as the installed console script runs it: the current directory is
    NOT on sys.path (``python -c`` would put it there)."""
    code = "import sys; sys.path.pop(0); from dk.cli import main; sys.exit(main())"
    env = {k: v for k, v in os.environ.items() if k != "DK_LOAD_PLUGINS"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def ok_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The user's folder: mynet/models.py, weights.pt, labels.txt, images/{red,green,blue}.png.

    The weights make the blocks pass their input through (conv weights 0, so each block is
    relu(x)) and the head read the channel means: a red image normalised with mean 0.5 and std
    0.25 gives logits [2, 0, 0, 0], softmax 0.711 for 'red' (0.475 without the normalisation)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("user")
    (root / "mynet").mkdir()
    (root / "mynet" / "__init__.py").write_text("")
    (root / "mynet" / "models.py").write_text(textwrap.dedent(MODELS_PY))
    spec = importlib.util.spec_from_file_location("user_mynet_models", root / "mynet" / "models.py")
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    state = models.make_net().state_dict()
    for key, value in state.items():
        if "conv" in key:
            state[key] = torch.zeros_like(value)
    state["4.weight"] = torch.eye(4, 3)
    state["4.bias"] = torch.zeros(4)
    torch.save(state, root / "weights.pt")
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (root / "images").mkdir()
    for name, colour in COLOURS.items():
        Image.fromarray(np.full((48, 40, 3), colour, np.uint8)).save(root / "images" / f"{name}.png")
    return root


def user_model(*extra: str) -> list[str]:
    return ["--model", "mynet.models:make_net", "--weights", "weights.pt", *extra]


def softmax_top(logit: float, others: int = 3) -> float:
    return float(np.exp(logit) / (np.exp(logit) + others))


def test_module_factory_is_imported_from_the_current_folder(project):
    result = ok_json(dk("run", "export", "--plugin", "torch", *user_model("--shapes", "input:1x3x32x32"), "--json",
                        cwd=project))
    manifest = result["artifact"]
    assert manifest["extra"]["torch_source"]["root"] == str(project)
    assert manifest["inputs"][0]["shape"] == ["batch", 3, 32, 32]
    # another folder: the artifact still knows where mynet lives, and the torch engine reloads it
    other = project / "elsewhere"
    other.mkdir(exist_ok=True)
    x = np.zeros((1, 3, 32, 32), np.float32)
    x[:, 1] = 1.0
    np.save(other / "x.npy", x)
    out = ok_json(dk("run", "infer", "--plugin", "torch", "--artifact", manifest["path"] if os.path.isabs(
        manifest["path"]) else str(project / manifest["path"]), "--input", "x.npy", "--json", cwd=other))
    assert np.argmax(out["values"]["output"][0]) == 1


def test_a_module_that_is_nowhere_names_the_folder_it_looked_in(project, tmp_path):
    line = error_line(dk("run", "export", "--plugin", "torch", "--model", "nothere.models:make_net", "--shapes",
                         "input:1x3x32x32", cwd=tmp_path))
    assert "cannot find module 'nothere.models'" in line and str(tmp_path) in line


def test_declared_task_labels_and_normalisation_reach_infer_on_images(project):
    """ort builds from the torch source; --input-size alone gives the export shape."""
    result = ok_json(dk("run", "infer", "--plugin", "ort", *user_model("--input-size", "32"), "--task",
                        "classification", "--labels", "labels.txt", *NORMALISE, "--input", "images", "--json",
                        cwd=project))
    assert result["task"] == "classification"
    assert result["preprocessing"]["mean"] == [0.5, 0.5, 0.5] and result["preprocessing"]["size"] == [32, 32]
    top = {os.path.basename(entry["file"]): entry["top_k"][0] for entry in result["images"]}
    assert {f: t["label"] for f, t in top.items()} == {"blue.png": "blue", "green.png": "green", "red.png": "red"}
    assert top["red.png"]["score"] == pytest.approx(softmax_top(2.0), abs=1e-4)
    manifest = json.loads((project / result["artifact"] / "dk.json").read_text())
    assert manifest["model"]["labels"] == LABELS and manifest["model"]["task"] == "classification"
    assert manifest["model"]["preprocessing"] == {"mean": [0.5] * 3, "std": [0.25] * 3, "size": [32, 32]}


def test_model_meta_file_declares_the_same_and_options_win(project):
    (project / "model.json").write_text(json.dumps({
        "task": "classification", "labels": "labels.txt",
        "preprocessing": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "input_size": 32,
                          "channel_order": "rgb"},
    }))
    result = ok_json(dk("run", "infer", "--plugin", "ort", *user_model("--model-meta", "model.json",
                        "--channel-order", "bgr"), "--input", "images/red.png", "--json", cwd=project))
    best = result["images"][0]["top_k"][0]
    assert (best["label"], result["preprocessing"]["colour"]) == ("blue", "bgr")  # red read as BGR
    assert best["score"] == pytest.approx(softmax_top(2.0), abs=1e-4)


def test_changing_the_labels_rebuilds_the_manifest(project):
    (project / "other-labels.txt").write_text("a\nb\nc\nd\n")
    first = ok_json(dk("run", "export", "--plugin", "ort", *user_model("--input-size", "32", "--labels",
                       "labels.txt"), "--json", cwd=project))
    second = ok_json(dk("run", "export", "--plugin", "ort", *user_model("--input-size", "32", "--labels",
                        "other-labels.txt"), "--json", cwd=project))
    assert first["artifact"]["model"]["labels"] == LABELS
    assert second["artifact"]["model"]["labels"] == ["a", "b", "c", "d"] and not second["artifact"]["reused"]


def test_option_task_is_the_same_for_every_plugin(project):
    for plugin in ("torch", "ort"):
        result = ok_json(dk("run", "export", "--plugin", plugin, *user_model("--input-size", "32"), "-o",
                            "task=classification", "--json", cwd=project))
        assert result["artifact"]["model"]["task"] == "classification", plugin
        assert "task" not in result["artifact"]["options"].get("options", {}), plugin
    line = error_line(dk("run", "export", "--plugin", "ort", *user_model("--input-size", "32"), "-o",
                         "task=detection", "--task", "classification", cwd=project))
    assert "--task classification and -o task=detection disagree" in line


@pytest.mark.parametrize("plugin", ["ort", "openvino"])
def test_dynamic_hw_from_torch_is_kept_and_takes_resized_images(project, plugin):
    if plugin == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed")
    result = ok_json(dk("run", "infer", "--plugin", plugin, *user_model("--shapes", "input:1x3x32x32",
                        "--dynamic-hw", "--input-size", "40x24", "--labels", "labels.txt", "--task", "classification"),
                        *NORMALISE, "--input", "images/green.png", "--json", cwd=project))
    manifest = json.loads((project / result["artifact"] / "dk.json").read_text())
    shape = manifest["inputs"][0]["shape"]
    assert isinstance(shape[2], str) and isinstance(shape[3], str), shape
    assert result["preprocessing"]["size"] == [40, 24]
    assert result["images"][0]["top_k"][0]["label"] == "green"


def test_dynamic_hw_without_an_input_size_says_how_to_give_one(project):
    line = error_line(dk("run", "infer", "--plugin", "ort", *user_model("--shapes", "input:1x3x32x32",
                         "--dynamic-hw"), "--input", "images/green.png", cwd=project))
    assert "dynamic height/width" in line and "--input-size" in line


def test_bounded_batch_artifact_can_be_benchmarked(project):
    result = ok_json(dk("run", "bench", "--plugin", "ort", *user_model("--shapes", "input:1x3x32x32",
                        "--min-shapes", "input:1x3x32x32", "--max-shapes", "input:8x3x32x32"), "--batches", "1,8",
                        "--iterations", "3", "--warmup", "1", "--hw-interval", "0", "--json", cwd=project))
    runs = result["runs"]
    assert [(r["batch"], r["status"]) for r in runs] == [(1, "ok"), (8, "ok")], runs


def test_torch_source_keeps_its_shapes_for_the_model_summary_and_size_sweeps(project):
    result = ok_json(dk("run", "bench", "--plugin", "ort", *user_model("--shapes", "input:1x3x32x32"),
                        "--input-sizes", "32,16", "--iterations", "3", "--warmup", "1", "--hw-interval", "0", "--json",
                        cwd=project))
    model = result["model"]
    assert "summary_error" not in model, model.get("summary_error")
    # 4 convs of 3x3x3 -> 3 channels at every pixel, plus the 3x4 head
    assert [m["macs"] for m in model["summaries"]] == [4 * 81 * 32 * 32 + 12, 4 * 81 * 16 * 16 + 12]
    assert model["summary"]["input_shapes"] == {"input": [1, 3, 32, 32]}
    assert [r["status"] for r in result["runs"]] == ["ok", "ok"]
    assert [r["input_shape"][2:] for r in result["runs"]] == [[32, 32], [16, 16]]


def test_a_precision_the_plugin_lacks_is_one_error_and_nothing_on_disk(project, tmp_path):
    line = error_line(dk("run", "export", "--plugin", "onnxref", "--precision", "int8", "--out", str(tmp_path / "a"),
                         cwd=project))
    assert "plugin 'onnxref' has no int8 precision (it builds fp32)" in line
    assert not (tmp_path / "a").exists()


def test_export_int8_goes_through_the_quantize_stage(project):
    result = ok_json(dk("run", "export", "--plugin", "ort", "--precision", "int8", *user_model("--input-size", "32"),
                        "--method", "dynamic", "--json", cwd=project))
    artifact = result["artifact"]
    assert (artifact["precision"], artifact["extra"]["method"]) == ("int8", "dynamic")  # no calibration data given
    assert artifact["extra"]["quantize_linear_nodes"] > 0


@pytest.mark.parametrize("content, expected", [
    (b"my notes about the model\n", "is not a torch.save file"),
    ("linear", "does not match the model from mynet.models:make_net: missing keys 0.bn1.bias"),
    ("wider", "4.weight has shape [5, 3] in the file but [4, 3] in the model"),
    ("list", "holds no state dict"),
])
def test_weights_that_do_not_fit_are_one_clear_error(project, tmp_path, content, expected):
    weights = tmp_path / "w.pt"
    if isinstance(content, bytes):
        weights.write_bytes(content)
    elif content == "linear":
        torch.save(torch.nn.Linear(3, 4).state_dict(), weights)
    elif content == "wider":
        state = torch.load(project / "weights.pt", weights_only=True)
        state["4.weight"], state["4.bias"] = torch.zeros(5, 3), torch.zeros(5)
        torch.save(state, weights)
    else:
        torch.save([torch.zeros(2)], weights)
    line = error_line(dk("run", "export", "--plugin", "torch", "--model", "mynet.models:make_net", "--weights",
                         str(weights), "--shapes", "input:1x3x32x32", "--out", str(tmp_path / "out"), cwd=project))
    assert expected in line
    assert not list((tmp_path / "out").rglob("dk.json"))


@pytest.mark.parametrize("args, expected", [
    (["--mean", "0.5,x"], "--mean '0.5,x' must be numbers separated by commas"),
    (["--std", "0,1,1"], "std must not be 0"),
    (["--input-size", "32x"], "--input-size '32x' must be SIZE or HEIGHTxWIDTH"),
    (["--labels", "missing.txt"], "--labels file missing.txt does not exist"),
    (["--model-meta", "labels.txt"], "--model-meta labels.txt is not valid JSON"),
    (["--labels", "three.txt", "--task", "classification"],
     "the labels name 3 classes, but the model's output 'output' ['batch', 4] has 4"),
])
def test_bad_model_metadata_is_one_clear_error(project, args, expected):
    (project / "three.txt").write_text("a\nb\nc\n")
    line = error_line(dk("run", "export", "--plugin", "ort", *user_model("--input-size", "32"), *args, cwd=project))
    assert expected in line


def test_bench_accuracy_uses_the_declared_labels_and_normalisation(project):
    """Class folders named by label; the model's label order (red, green, blue, black) is not the
    folders' sorted order, so a right answer needs the labels from the manifest."""
    from PIL import Image

    data = project / "dataset"
    for name, colour in COLOURS.items():
        (data / name).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            Image.fromarray(np.full((20 + i, 30, 3), colour, np.uint8)).save(data / name / f"{i}.png")
    result = ok_json(dk("run", "bench", "--plugin", "ort", *user_model("--input-size", "32"), "--task",
                        "classification", "--labels", "labels.txt", *NORMALISE, "--data", "dataset", "--iterations",
                        "3", "--warmup", "1", "--hw-interval", "0", "--json", cwd=project))
    (run,) = result["runs"]
    assert run["status"] == "ok" and run["accuracy"] == 1.0, run


def test_readme_user_model_commands_work_as_written(project, tmp_path):
    """Every README command with ``my_pkg.models:make_net``, run in a folder holding my_pkg/,
    net.pt, labels.txt, images/ and calib.npz, as the README says."""
    import re
    import shlex
    import shutil
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    commands = [line.split("#")[0].strip() for line in readme.splitlines()
                if line.startswith("dk ") and "my_pkg.models:make_net" in line]
    assert len(commands) >= 3, commands
    (tmp_path / "my_pkg").mkdir()
    (tmp_path / "my_pkg" / "__init__.py").write_text("")
    (tmp_path / "my_pkg" / "models.py").write_text(textwrap.dedent(MODELS_PY))
    shutil.copy(project / "weights.pt", tmp_path / "net.pt")
    shutil.copy(project / "labels.txt", tmp_path / "labels.txt")
    shutil.copytree(project / "images", tmp_path / "images")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((4, 3, 224, 224), dtype=np.float32))
    for command in commands:
        args = shlex.split(re.sub(r"\s+", " ", command))[1:]
        proc = dk(*args, "--json", cwd=tmp_path)
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
        result = json.loads(proc.stdout)
        if "--input" in args:
            assert [e["top_k"][0]["label"] for e in result["images"]] == ["blue", "green", "red"], command


def test_serve_inference_uses_the_declared_metadata(project):
    """``POST /inference`` on a dynamic-H/W artifact: the image is resized to the declared size,
    normalised and labelled as declared (the serve worker reads the manifest's model section)."""
    pytest.importorskip("starlette", reason="dk serve needs starlette")
    import asyncio
    import io

    from PIL import Image

    from dk import api
    from dk.artifacts import Artifact
    from dk.serve.app import ModelInfo, create_app
    from dk.serve.config import ServeConfig
    from tests.core.test_serve_support import call

    result = ok_json(dk("run", "export", "--plugin", "ort", *user_model("--shapes", "input:1x3x32x32", "--dynamic-hw",
                        "--input-size", "24"), "--task", "classification", "--labels", "labels.txt", *NORMALISE,
                        "--json", cwd=project))
    artifact = Artifact.load(project / result["artifact"]["path"])
    buffer = io.BytesIO()
    Image.fromarray(np.full((30, 50, 3), COLOURS["green"], np.uint8)).save(buffer, format="PNG")
    with api.load_engine("ort", artifact) as engine:
        app = create_app(engine, ServeConfig(model_name="make-net"), ModelInfo.from_artifact(artifact, "ort"))
        status, _, body = asyncio.run(call(app, "POST", "/inference", buffer.getvalue()))
    assert status == 200, body
    best = json.loads(body)["items"][0]["top_k"][0]
    assert best["label"] == "green" and best["score"] == pytest.approx(softmax_top(2.0), abs=1e-4)


def test_dynamic_hw_model_is_benchmarked_at_the_declared_size(project):
    result = ok_json(dk("run", "bench", "--plugin", "ort", *user_model("--shapes", "input:1x3x32x32", "--dynamic-hw",
                        "--input-size", "40x24"), "--iterations", "3", "--warmup", "1", "--hw-interval", "0", "--json",
                        cwd=project))
    (run,) = result["runs"]
    assert (run["status"], run["input_shape"]) == ("ok", [1, 3, 40, 24]), run


def test_dynamic_hw_size_sweep_times_each_cell_at_its_size(project):
    result = ok_json(dk("run", "bench", "--plugin", "ort", *user_model("--shapes", "input:1x3x32x32", "--dynamic-hw",
                        "--input-size", "40x24"), "--input-sizes", "16,24x20", "--iterations", "3", "--warmup", "1",
                        "--hw-interval", "0", "--json", cwd=project))
    cells = [(r["status"], r["input_size"], r["input_shape"]) for r in result["runs"]]
    assert cells == [("ok", [16, 16], [1, 3, 16, 16]), ("ok", [24, 20], [1, 3, 24, 20])], result["runs"]


@pytest.mark.parametrize("plugin", ["ort", "openvino"])
def test_labels_declared_over_an_existing_artifact_reach_the_new_one(project, plugin, tmp_path):
    if plugin == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed")
    first = ok_json(dk("run", "export", "--plugin", plugin, *user_model("--input-size", "32"), "--out",
                       str(tmp_path), "--json", cwd=project))
    (project / "upper.txt").write_text("RED\nGREEN\nBLUE\nBLACK\n")
    again = ok_json(dk("run", "export", "--plugin", plugin, "--model", first["artifact"]["path"], "--labels",
                       "upper.txt", "--task", "classification", "--out", str(tmp_path / "again"), "--json",
                       cwd=project))
    assert again["artifact"]["model"]["labels"] == ["RED", "GREEN", "BLUE", "BLACK"]
    assert again["artifact"]["model"]["task"] == "classification"
