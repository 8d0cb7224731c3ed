"""The state one ``dk serve`` app shares between its handlers: the served model and its engine runner."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from dk.engine import Engine
from dk.serve.config import ServeConfig
from dk.serve.limits import HttpError
from dk.serve.metrics import Metrics
from dk.serve.runner import EngineRunner

#: The one version a dk server serves of its model (OIP URLs may name it).
MODEL_VERSION = "1"


@attrs.define
class ModelInfo:
    """What ``GET /v2/models/{name}`` reports, from the artifact's manifest."""

    name: str
    plugin: str = ""
    precision: str = "fp32"
    meta: dict[str, Any] = attrs.field(factory=dict)
    source_sha256: str = ""
    artifact: str = ""

    @classmethod
    def from_artifact(cls, artifact: Any, plugin: str, name: str | None = None) -> "ModelInfo":
        meta = artifact.model_meta
        return cls(name=name or meta.get("name") or artifact.name, plugin=plugin, precision=artifact.precision,
                   meta=dict(meta), source_sha256=artifact.manifest.get("source", {}).get("sha256", ""),
                   artifact=artifact.name)


@attrs.define
class Worker:
    """The state shared by the handlers of one app."""

    config: ServeConfig
    model: ModelInfo
    metrics: Metrics = attrs.field(factory=Metrics)
    runner: EngineRunner | None = None
    status: str = "loading"
    reason: str = "the engine is loading"
    swap_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)

    async def swap(self, engine: Engine, model: ModelInfo) -> None:
        """Serve ``engine`` as ``model`` from now on; requests already running on the old engine
        finish there, then it is closed."""
        old = self.runner
        self.model = model
        self.config.model_name = model.name
        self.start(engine)
        if old is not None:
            await old.aclose()

    def start(self, engine: Engine) -> None:
        c = self.config
        self.runner = EngineRunner(engine, self.metrics, concurrency=c.concurrency, max_batch=c.max_batch,
                                   max_delay_ms=c.max_delay_ms, inline_below_ms=c.inline_below_ms)
        self.status, self.reason = "ready", ""

    def require_ready(self) -> EngineRunner:
        if self.status != "ready" or self.runner is None:
            raise HttpError(503, f"model {self.model.name!r} is not ready: {self.reason}")
        return self.runner

    def require_model(self, name: str, version: str | None = None) -> None:
        """404 unless ``name`` (and ``version``, when the URL has one) is the served model's."""
        if name != self.model.name:
            raise HttpError(404, f"unknown model {name[:64]!r}; this server serves {self.model.name!r}")
        if version is not None and version != MODEL_VERSION:
            raise HttpError(404, f"model {name[:64]!r} has no version {version[:16]!r}; it has version {MODEL_VERSION}")
