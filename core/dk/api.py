"""The Python API behind the CLI: each stage call dispatched to one named plugin.

    from dk import api
    artifact = api.export("ort", ExportRequest(source=parse_model_arg(None)))
    with api.load_engine("ort", artifact) as engine:
        outputs = engine.infer(feeds)
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from dk.artifacts import Artifact
from dk.engine import Engine
from dk.errors import DkError, UsageError
from dk.plugins import get_plugin_manager
from dk.specs import ExportRequest, ModelSource, PluginInfo, QuantizeRequest


def _expect(result: Any, kind: type, plugin: str, stage: str) -> Any:
    if not isinstance(result, kind):
        raise DkError(f"plugin {plugin!r} returned {type(result).__name__} from stage {stage!r}, expected {kind.__name__}")
    return result


def options_for(plugin: str, options: Mapping[str, str]) -> dict[str, str]:
    """The options one plugin sees: ``KEY`` (``-o KEY=VALUE``) goes to every plugin, ``PLUGIN:KEY``
    (``-o ort:threads=1``) only to that plugin, as ``KEY``; a scoped key wins over a plain one.
    A sweep or comparison of several engines can so give each its own options."""
    plain = {k: v for k, v in options.items() if ":" not in k}
    scoped = {k.split(":", 1)[1]: v for k, v in options.items() if k.split(":", 1)[0] == plugin and ":" in k}
    return {**plain, **scoped}


def check_precision(plugin: str, precision: str, choose: str | None = None) -> None:
    """Refuse, before anything is built, a precision the plugin does not list in ``dk_describe``
    (a plugin that lists none is not checked), so that no plugin silently builds another one.
    ``choose``: what the user can do instead, in the words of the command's own flags."""
    manager = get_plugin_manager()
    if not manager.implements(plugin, "dk_describe"):
        return
    info = describe(plugin, probe=False)
    if info.precisions and precision not in info.precisions:
        others = _plugins_with(precision)
        where = f"plugins with {precision}: {', '.join(others)}" if others else "see 'dk doctor'"
        hint = choose or f"ask for one of those (--precision, or {plugin}:PRECISION in --plugins), or another plugin"
        raise UsageError(
            f"plugin {plugin!r} has no {precision} precision (it builds {', '.join(info.precisions)}); {hint} ({where})"
        )


def _plugins_with(precision: str) -> list[str]:
    """Installed, working plugins whose ``dk_describe`` lists ``precision`` (for error messages)."""
    from dk.plugins import OK

    manager = get_plugin_manager()
    found = []
    for name in sorted(manager.records):
        try:
            if manager.load(name).status != OK or not manager.implements(name, "dk_describe"):
                continue
            info = describe(name, probe=False)
        except Exception:  # a broken plugin only loses its place in the hint
            continue
        if info.available and info.kind == "engine" and precision in info.precisions:
            found.append(name)
    return found


def check_source_precision(source: ModelSource, precision: str, stage: str) -> None:
    """Refuse to build ``precision`` from an artifact whose graph already has another precision than
    fp32: an int8 or fp16 graph re-exported "as fp32" would be labelled (and named) fp32, and
    quantizing an int8 graph again does not make int8 of the original. An fp32 artifact builds
    anything; an export to the artifact's own precision keeps it."""
    if source.kind != "artifact":
        return
    held = Artifact.load(source.path).precision
    if held == "fp32" or (stage == "export" and precision == held):
        return
    use = f"use it as it is with 'dk run infer|bench --artifact {source.location}'"
    if stage == "quantize":
        raise UsageError(f"{source.location} is already an {held} artifact; quantizing its {held} graph again is "
                         f"not supported: {use}, or quantize the original fp32 model")
    raise UsageError(f"--model {source.location} is an {held} artifact; exporting it as {precision} would label its "
                     f"{held} graph {precision}: {use}, or give --model the original fp32 model")


def export(plugin: str, request: ExportRequest) -> Artifact:
    check_precision(plugin, request.precision)
    check_source_precision(request.source, request.precision, "export")
    request = attrs.evolve(request, options=options_for(plugin, request.options))
    result = get_plugin_manager().call_stage(plugin, "export", request=request)
    return _expect(result, Artifact, plugin, "export")


def quantize(plugin: str, request: QuantizeRequest) -> Artifact:
    check_precision(plugin, request.precision)
    check_source_precision(request.source, request.precision, "quantize")
    request = attrs.evolve(request, options=options_for(plugin, request.options))
    result = get_plugin_manager().call_stage(plugin, "quantize", request=request)
    return _expect(result, Artifact, plugin, "quantize")


def load_engine(plugin: str, artifact: Artifact, device: str = "cpu", options: Mapping[str, str] | None = None) -> Engine:
    """Open ``artifact`` with ``plugin`` after checking its files against the manifest."""
    artifact.verify()
    result = get_plugin_manager().call_stage(plugin, "load", artifact=artifact, device=device,
                                             options=options_for(plugin, options or {}))
    return _expect(result, Engine, plugin, "load_engine")


def infer(plugin: str, engine: Engine, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Stage-level inference: the plugin's ``dk_infer`` if it has one, else ``engine.infer``."""
    manager = get_plugin_manager()
    if manager.implements(plugin, "dk_infer"):
        result = manager.call_stage(plugin, "infer", engine=engine, inputs=inputs)
        if result is not None:
            return result
    return engine.infer(inputs)


def describe(plugin: str, probe: bool = False) -> PluginInfo:
    manager = get_plugin_manager()
    if not manager.implements(plugin, "dk_describe"):
        return PluginInfo(name=plugin, kind="unknown", details={"note": "plugin does not implement dk_describe"})
    return _expect(manager.call_stage(plugin, "describe", probe=probe), PluginInfo, plugin, "describe")


def postprocess(task: str, outputs: Mapping[str, Any], meta: Mapping[str, Any]) -> list[Any] | None:
    return get_plugin_manager().hook.dk_postprocess(task=task, outputs=outputs, meta=meta)
