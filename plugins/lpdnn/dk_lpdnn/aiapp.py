"""Starting the LPDNN http-worker binary for an AI app and waiting until it answers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Mapping

import attrs

from dk.artifacts import Artifact
from dk.errors import MissingDependency, ModelError
from dk_lpdnn.package import AIAPP_CONFIG, AIAPP_DIR

WORKER_ENV = "DK_LPDNN_WORKER"
WORKER_NAMES = ("http-worker", "lpdnn-http-worker")


@attrs.define
class WorkerProcess:
    """A started worker; ``stop()`` terminates it (and kills it if it does not stop in 5 s)."""

    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def find_worker(deployment_root: Path | None = None) -> str | None:
    explicit = os.environ.get(WORKER_ENV)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    if deployment_root is not None:
        for name in WORKER_NAMES:
            candidate = deployment_root / "bin" / name
            if candidate.is_file():
                return str(candidate)
    return next((found for name in WORKER_NAMES if (found := shutil.which(name))), None)


def app_config_of(artifact: Artifact) -> Path:
    if artifact.format == "lpdnn-aiapp":
        return Path(artifact.manifest["extra"]["app_config"])
    config = artifact.path / AIAPP_DIR / AIAPP_CONFIG
    if not config.is_file():
        raise MissingDependency(
            f"this LPDNN package has no {AIAPP_CONFIG}: the LPDNN toolchain (onnx2lpdnn) was not installed when it "
            "was exported; install it and export with --force, or serve the ONNX with 'dk serve --plugin ort' and "
            "export with 'dk run export --plugin lpdnn -o url=http://HOST:PORT'")
    return config


def start_worker(artifact: Artifact, options: Mapping[str, str], timeout: float) -> WorkerProcess:
    """Start the worker binary on the AI app's config and wait until ``/v2/health/ready`` answers."""
    config = app_config_of(artifact)
    if not config.is_file():
        raise ModelError(f"LPDNN app config {config.name} is missing; re-export the artifact")
    binary = find_worker(config.parent)
    if binary is None:
        raise MissingDependency(
            f"the LPDNN http-worker binary is not installed (looked for ${WORKER_ENV}, "
            f"{', '.join(WORKER_NAMES)} on PATH and in the deployment package); install LPDNN's deployment "
            "package, or serve the model with 'dk serve' and use -o url=http://HOST:PORT")
    port = int(options.get("port") or _free_port())
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([binary, "--app-config", str(config), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=log)
    worker = WorkerProcess(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            err = log.read().decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise ModelError(f"the LPDNN worker exited with code {process.returncode}: {err[0][:300]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return worker
        except OSError:
            time.sleep(0.05)
    worker.stop()
    raise ModelError(f"the LPDNN worker did not start listening on port {port} within {timeout:g} s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
