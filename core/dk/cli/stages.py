"""The single stages behind ``dk run``: each returns a JSON-ready dict and prints a table unless
``--json`` was given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dk import api, pipeline
from dk.cli import render
from dk.errors import InputError
from dk.plugins import get_plugin_manager


def export(plugin: str, precision: str, opts: pipeline.BuildOptions, as_json: bool) -> dict[str, Any]:
    """int8 goes through the plugin's quantize stage when it has one (as ``dk run quantize``)."""
    if opts.artifact:  # ignored, it built the default model instead
        from dk.errors import UsageError

        raise UsageError(f"export takes --model, not --artifact: to export from the artifact, give it as "
                         f"--model {opts.artifact}; --artifact is for infer, bench and quantize")
    if precision == "int8" and get_plugin_manager().implements(plugin, "dk_quantize"):
        with render.step(f"quantizing with {plugin} (int8, {opts.method})", as_json):
            artifact = pipeline.quantize(plugin, opts, precision)
    else:
        with render.step(f"exporting with {plugin} ({precision})", as_json):
            artifact = pipeline.export(plugin, precision, opts)
    return _artifact_result("export", plugin, artifact, as_json)


def quantize(plugin: str, precision: str, opts: pipeline.BuildOptions, as_json: bool) -> dict[str, Any]:
    with render.step(f"quantizing with {plugin} ({precision}, {opts.method})", as_json):
        artifact = pipeline.quantize(plugin, opts, precision)
    if artifact.reused:
        from dk.debug.mixed_precision import drop_record

        drop_record(artifact)
    return _artifact_result("quantize", plugin, artifact, as_json)


def _artifact_result(stage: str, plugin: str, artifact, as_json: bool) -> dict[str, Any]:
    result = {"stage": stage, "plugin": plugin, "artifact": artifact.to_json()}
    if not as_json:
        render.artifact_summary(f"dk run {stage} --plugin {plugin}", result["artifact"])
    return result


def _load_inputs(path: str, engine) -> dict[str, np.ndarray]:
    file = Path(path)
    try:
        if file.suffix == ".npy":
            if len(engine.inputs) != 1:
                raise InputError(f"the engine has {len(engine.inputs)} inputs; give them by name in an .npz file")
            return {engine.inputs[0].name: np.load(file, allow_pickle=False)}
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read input file {path}: {exc}") from None
    raise InputError(f"input file {path} must be .npy or .npz")


def infer(plugin: str, precision: str, opts, input_path: str | None, batch: int, as_json: bool) -> dict[str, Any]:
    with render.step(f"building the {plugin} artifact", as_json):
        artifact = pipeline.build(plugin, precision, opts)
    with api.load_engine(plugin, artifact, opts.device, opts.options) as engine:
        if input_path:
            feeds = _load_inputs(input_path, engine)
            labels = None
        else:
            data = pipeline.eval_data(opts, engine, limit=batch)
            feeds = {name: np.ascontiguousarray(rows) for name, rows in
                     pipeline.feeds_by_name(engine, data.first(batch).model_inputs).items()}
            labels = None if data.y is None else data.y[:batch].tolist()
        import time

        start = time.perf_counter()
        outputs = api.infer(plugin, engine, feeds)
        infer_ms = (time.perf_counter() - start) * 1e3
    meta = artifact.model_meta
    task = meta.get("task")
    results = api.postprocess(task, outputs, meta) if task else None
    result = {
        "stage": "infer",
        "plugin": plugin,
        "artifact": str(artifact.path),
        "infer_ms": infer_ms,
        "outputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in outputs.items()},
        "results": results,
        "labels": labels,
    }
    if results is None:
        result["values"] = {k: np.asarray(v).tolist() for k, v in outputs.items() if np.asarray(v).size <= 4096}
    if not as_json:
        rows = []
        for i, sample in enumerate(results or []):
            best = sample["top_k"][0]
            rows.append({"sample": i, "label": best["label"], "score": f"{best['score']:.4f}",  # 0.9998, not 1
                         "truth": None if labels is None else str(labels[i])})
        if rows:
            render.rows_table(f"dk run infer --plugin {plugin} ({infer_ms:.2f} ms)", rows,
                              [("sample", "sample"), ("label", "predicted"), ("score", "score"), ("truth", "truth")])
        else:
            render.rows_table(f"dk run infer --plugin {plugin} ({infer_ms:.2f} ms)",
                              [{"output": k, **v} for k, v in result["outputs"].items()],
                              [("output", "output"), ("shape", "shape"), ("dtype", "dtype")])
    return result
