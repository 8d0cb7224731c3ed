"""RemoteEngine: ``Engine.infer`` as an OIP v2 request to an HTTP worker, with network time split
from the worker's own inference time."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Mapping

import numpy as np

from dk.artifacts import Artifact
from dk.engine import Engine, InputChecker
from dk.errors import DkError, ModelError, UsageError
from dk.serve.oip import DATATYPES
from dk.specs import TensorSpec
from dk_lpdnn.client import WorkerClient
from dk_lpdnn.options import LOAD_OPTIONS, check_options

WORKER_FILE = "worker.json"


class RemoteEngine(Engine):
    """An engine on the other side of an HTTP worker; ``timings()`` splits network from server time."""

    def __init__(self, client: WorkerClient, model: str, metadata: Mapping[str, Any], *, name: str,
                 precision: str, binary: bool = True, on_close: Any = None):
        self.client, self.model, self.binary = client, model, binary
        self.name, self.precision = name, precision
        params = metadata.get("parameters") or {}
        self.device = f"remote:{params.get('device', 'unknown')}"
        self.inputs = specs_from_metadata(metadata["inputs"], params.get("dk_inputs"))
        self.outputs = specs_from_metadata(metadata.get("outputs") or [], None)
        self._check = InputChecker(self.inputs)
        self._output_names = [s.name for s in self.outputs]
        self._lock = threading.Lock()
        self._samples: list[tuple[float, float, float]] = []
        self._on_close = on_close
        self.last_timing: dict[str, float] = {}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check(inputs)
        start = time.perf_counter()
        outputs, params = self.client.infer(self.model, inputs, self._output_names, self.binary)
        total = (time.perf_counter() - start) * 1e3
        server = float(params.get("server_ms", 0.0))
        infer = float(params.get("infer_ms", 0.0))
        self.last_timing = {"total_ms": total, "server_ms": server, "infer_ms": infer,
                            "network_ms": max(total - server, 0.0)}
        with self._lock:
            if len(self._samples) < 1_000_000:
                self._samples.append((total, server, infer))
        return outputs

    def timings(self) -> dict[str, Any]:
        """p50 of the round trip, of the worker's own inference and of the rest (network, HTTP, JSON)."""
        with self._lock:
            data = np.asarray(self._samples, dtype=np.float64).reshape(-1, 3)
        if not len(data):
            return {"calls": 0}
        total, server, infer = np.median(data, axis=0)
        network = np.median(np.maximum(data[:, 0] - data[:, 1], 0.0))
        return {"calls": len(data), "p50_total_ms": float(total), "p50_target_infer_ms": float(infer),
                "p50_server_ms": float(server), "p50_network_ms": float(network)}

    def reset_timings(self) -> None:
        """Forget the calls so far (the benchmark calls this before each timed run)."""
        with self._lock:
            self._samples.clear()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "url": self.client.url, "model": self.model, "timings": self.timings()}

    def close(self) -> None:
        self.client.close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


def specs_from_metadata(tensors: Any, dk_specs: Any) -> list[TensorSpec]:
    """TensorSpecs from OIP metadata; dk workers add exact specs (symbolic names, ranges)."""
    if isinstance(dk_specs, list):
        try:
            return [TensorSpec.from_json(s) for s in dk_specs]
        except (KeyError, TypeError, ValueError):
            pass
    specs = []
    try:
        for t in tensors:
            shape = tuple(("batch" if i == 0 else f"dim{i}") if int(d) < 0 else int(d)
                          for i, d in enumerate(t["shape"]))
            specs.append(TensorSpec(str(t["name"]), shape, DATATYPES[t["datatype"]]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DkError(f"the worker's model metadata is not OIP v2 ({exc})") from None
    return specs


def client_options(options: Mapping[str, str]) -> dict[str, Any]:
    try:
        timeout = float(options.get("timeout", 30))
        retries = int(options.get("retries", 3))
    except ValueError:
        raise UsageError("options timeout and retries must be numbers") from None
    if timeout <= 0 or retries < 0:
        raise UsageError("option timeout must be > 0 and retries >= 0")
    return {"timeout": timeout, "retries": retries}


def load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> RemoteEngine:
    """Open an ``http-worker`` artifact, or start the LPDNN worker of an ``lpdnn``/``lpdnn-aiapp`` one."""
    check_options(options, LOAD_OPTIONS, "load")
    kwargs = client_options(options)
    binary = options.get("binary", "1").strip().lower() not in ("0", "false", "no")
    on_close = None
    if artifact.format == "http-worker":
        worker = json.loads((artifact.path / WORKER_FILE).read_text())
        url, model = options.get("url") or worker["url"], worker.get("model")
    elif artifact.format in ("lpdnn", "lpdnn-aiapp"):
        from dk_lpdnn.aiapp import start_worker

        process = start_worker(artifact, options, kwargs["timeout"])
        url, model, on_close = process.url, None, process.stop
    else:
        raise ModelError(f"the lpdnn plugin runs http-worker and LPDNN artifacts; {artifact.path.name} holds a "
                         f"{artifact.format!r} model: serve it with 'dk serve --plugin {artifact.plugin}' and export "
                         "with 'dk run export --plugin lpdnn -o url=http://HOST:PORT'")
    client = WorkerClient(url, **kwargs)
    try:
        model = client.model_name(model)
        metadata = client.metadata(model)
    except BaseException:
        client.close()
        if on_close is not None:
            on_close()
        raise
    return RemoteEngine(client, model, metadata, name=artifact.name, precision=artifact.precision, binary=binary,
                        on_close=on_close)
