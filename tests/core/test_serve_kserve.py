"""deploy/kserve: the Dockerfile and the InferenceService manifest agree with each other and with the
repository, and the image's own command line (ENTRYPOINT + CMD, or + the manifest's args, with the
manifest's and the image's environment) serves the probe paths and an inference.

The image itself is built and run only where a Docker daemon answers and DK_TEST_DOCKER=1 (a build
downloads the Python packages and takes minutes); the machines this is developed on have the docker
CLI but no daemon.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dk.serve.server import STOP_GRACE_S

yaml = pytest.importorskip("yaml", reason="parsing the manifest needs PyYAML: pip install pyyaml")

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "kserve" / "Dockerfile"
MANIFEST = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
REQUEST = ROOT / "deploy" / "kserve" / "request.json"  # the curl example of docs/kserve.md
DK = [sys.executable, "-c", "import sys; from dk.cli import main; sys.exit(main())"]
HEALTH = {"/v2/health/live", "/v2/health/ready"}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    steps, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        instruction, _, args = (pending + line).strip().partition(" ")
        steps.append((instruction.upper(), args.strip()))
        pending = ""
    return steps


def one(steps: list[tuple[str, str]], name: str) -> str:
    found = [args for instruction, args in steps if instruction == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def build_args(steps) -> dict[str, str]:
    return {k: v.strip('"') for k, _, v in (a.partition("=") for i, a in steps if i == "ARG")}


def image_env(steps) -> dict[str, str]:
    """ENV values with ${ARG} replaced by the ARG defaults."""
    args, env = build_args(steps), {}
    for instruction, text in steps:
        if instruction == "ENV":
            for pair in shlex.split(text):
                key, _, value = pair.partition("=")
                env[key] = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], value)
    return env


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def container(doc: dict) -> dict:
    (c,) = doc["spec"]["predictor"]["containers"]
    return c


def option(argv: list[str], name: str) -> str:
    """The value of the last ``name VALUE`` in argv (click takes the last one given)."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]
    assert values, f"{name} is not in {argv}"
    return values[-1]


def test_the_image_is_python_slim_and_its_command_listens_where_kserve_sends():
    steps = dockerfile()
    assert one(steps, "FROM") == "python:3.11-slim"
    entrypoint, cmd = json.loads(one(steps, "ENTRYPOINT")), json.loads(one(steps, "CMD"))
    c = container(manifest())
    (port,) = c["ports"]
    assert entrypoint[:2] == ["dk", "serve"]
    for argv in (entrypoint + cmd, entrypoint + c["args"]):  # docker run; Kubernetes (args replace CMD)
        assert option(argv, "--host") == "0.0.0.0"
        assert int(option(argv, "--port")) == port["containerPort"] == int(one(steps, "EXPOSE")) == 8080
    assert port["protocol"] == "TCP"
    assert image_env(steps)["DK_SERVE_PLUGIN"] == "ort"
    assert one(steps, "USER") == "1000"


def test_every_path_the_dockerfile_copies_or_installs_exists():
    steps = dockerfile()
    args = build_args(steps)
    copied = [a.split()[0] for i, a in steps if i == "COPY"]
    assert copied == ["core", "plugins"]
    installed = []
    for command in (c.strip() for i, a in steps if i == "RUN" for c in re.split(r";|&&|\bthen\b", a)):
        if command.startswith("pip install"):
            command = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), command)
            installed += [re.sub(r"\[.*\]$", "", t) for t in shlex.split(command) if t.startswith("./")]
    assert installed == ["./core", "./plugins/ort"]
    for path in copied + installed:
        assert (ROOT / path).is_dir() and (ROOT / path / "pyproject.toml").is_file() or path == "plugins", path
    assert (ROOT / "plugins" / args["DK_PLUGIN"] / "pyproject.toml").is_file()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/dk-artifacts", "**/build", "**/*.egg-info", ".git"} <= set(ignored)


def test_manifest_is_a_kserve_v2_custom_predictor_with_v2_health_probes():
    doc = manifest()
    assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    c = container(doc)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert c["name"] == "kserve-container"  # the container KServe treats as the predictor
    assert env["PROTOCOL"] == "v2"  # KServe's webhook accepts v1 or v2 only
    # /v2/models/<InferenceService name>/infer; KServe reads --model_name from the args for its own URLs
    assert option(c["args"], "--model_name") == doc["metadata"]["name"]
    probes = {kind: c[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/v2/health/ready"
    assert probes["livenessProbe"]["path"] == "/v2/health/live"
    assert {p["port"] for p in probes.values()} == {c["ports"][0]["containerPort"]}
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}
    assert f"threads={c['resources']['limits']['cpu']}" in c["args"]


def test_serve_options_from_the_environment_and_kserves_model_name_spelling(monkeypatch, tmp_path):
    from dk.cli.serve import serve

    monkeypatch.setenv("DK_SERVE_PLUGIN", "ort")
    monkeypatch.setenv("DK_SERVE_ARTIFACT", str(tmp_path))
    monkeypatch.setenv("DK_SERVE_NAME", "from-env")
    params = serve.make_context("serve", []).params
    assert (params["plugin"], params["artifact"], params["model_name"]) == ("ort", str(tmp_path), "from-env")
    assert serve.make_context("serve", ["--model_name", "dk-digits"]).params["model_name"] == "dk-digits"
    assert serve.make_context("serve", ["-p", "torch", "--name", "cli"]).params["plugin"] == "torch"
    assert serve.make_context("serve", ["--name", "cli"]).params["model_name"] == "cli"


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post(url: str, doc: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


@pytest.mark.parametrize("how", ["docker run", "kserve"])
def test_the_image_command_line_answers_the_probes_and_infers(spawn, how):
    """What the container runs, with 127.0.0.1 and a free port instead of 0.0.0.0:8080."""
    steps, doc = dockerfile(), manifest()
    c = container(doc)
    argv = json.loads(one(steps, "ENTRYPOINT")) + (c["args"] if how == "kserve" else json.loads(one(steps, "CMD")))
    argv[argv.index("--port") + 1] = "0"
    argv[argv.index("--host") + 1] = "127.0.0.1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DK_SERVE_", "DK_LOAD_PLUGINS"))}
    env.update(image_env(steps))
    if how == "kserve":
        env.update({e["name"]: e["value"] for e in c["env"]})
    name = option(argv, "--model_name") if "--model_name" in argv else env.get("DK_SERVE_NAME", "digitsnet")
    assert name == ("dk-digits" if how == "kserve" else "digitsnet")
    server = spawn(DK + argv[1:], env=env)
    url = server.wait_for_line(r"on (http://127\.0\.0\.1:\d+)").group(1)
    probes = {c[k]["httpGet"]["path"] for k in ("readinessProbe", "livenessProbe")}
    assert probes == HEALTH
    # the URL is announced once the engine is loaded and the server accepts connections: ready at once
    assert _get(url + c["readinessProbe"]["httpGet"]["path"])[0] == 200, server.output()
    assert _get(url + "/v2/health/live") == (200, {"live": True})
    assert _get(url + "/v2/health/ready") == (200, {"ready": True})
    assert _get(f"{url}/v2/models/{name}/ready") == (200, {"name": name, "ready": True})
    _check_infer(url, name)
    server.send_signal(signal.SIGTERM)  # how Kubernetes stops a pod
    assert server.wait(STOP_GRACE_S) == 0, server.output()
    assert "dk serve stopped (SIGTERM)" in server.stderr


def _check_infer(url: str, name: str) -> None:
    """Two held-out digits through the served default model = onnxruntime on the shipped ONNX."""
    import onnxruntime as ort
    from dk.default_model import ONNX_PATH, load_split

    x, y = load_split("eval")
    x, y = x[:2], y[:2]
    body = {"id": "kserve-1", "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                          "data": x.ravel().tolist()}]}
    status, doc = _post(f"{url}/v2/models/{name}/infer", body)
    assert status == 200 and doc["id"] == "kserve-1" and doc["model_name"] == name
    (out,) = doc["outputs"]
    assert (out["name"], out["shape"], out["datatype"]) == ("logits", [2, 10], "FP32")
    logits = np.asarray(out["data"], np.float32).reshape(2, 10)
    expected = ort.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    assert logits.argmax(1).tolist() == list(y)
    example = json.loads(REQUEST.read_text())
    assert example["inputs"][0]["data"] == x[:1].tolist()  # the first held-out digit, a 7
    status, doc = _post(f"{url}/v2/models/{name}/infer", example)
    assert status == 200 and doc["id"] == "digit-0" and doc["outputs"][0]["shape"] == [1, 10]
    np.testing.assert_allclose(doc["outputs"][0]["data"], logits[0], rtol=1e-5, atol=1e-6)
    assert int(np.argmax(doc["outputs"][0]["data"])) == y[0] == 7


def _docker_skip_reason() -> str | None:
    if os.environ.get("DK_TEST_DOCKER") != "1":
        return "building the image downloads packages and takes minutes: set DK_TEST_DOCKER=1 to run it"
    try:
        info = _docker("info", timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker is not usable here ({type(exc).__name__}: {exc})"
    if info.returncode != 0:
        return f"no Docker daemon answers 'docker info': {(info.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=False, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(_docker_skip_reason() is not None, reason=str(_docker_skip_reason()))
def test_the_docker_image_builds_and_serves():
    tag = "dk-serve-kserve-test:latest"
    build = _docker("build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT), timeout=1800)
    assert build.returncode == 0, build.stderr[-4000:]
    run = _docker("run", "-d", "--rm", "-e", "DK_SERVE_NAME=dk-digits", "-p", "127.0.0.1::8080", tag)
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        port = _docker("port", cid, "8080/tcp").stdout.split(":")[-1].strip()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(url + "/v2/health/ready")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, ValueError):
                pass
            assert time.monotonic() < deadline, "the container never became ready"
            time.sleep(0.5)
        assert _get(url + "/v2/health/live") == (200, {"live": True})
        _check_infer(url, "dk-digits")
    finally:
        stop = _docker("stop", "-t", "30", cid, timeout=60)
    assert stop.returncode == 0, stop.stderr
