"""Plugin discovery and dispatch.

Plugins are modules registered in the ``dk`` entry-point group. pluggy's own
``load_setuptools_entrypoints`` stops at the first plugin that fails, so dk loads each entry point
on its own, records what went wrong, and goes on: a broken plugin shows up in ``dk doctor`` and
never breaks another command. ``DK_LOAD_PLUGINS=a,b`` restricts which entry points are loaded;
``DK_STRICT_PLUGINS=1`` re-raises plugin errors (for plugin authors).
"""

from __future__ import annotations

import os
from importlib import metadata
from types import ModuleType
from typing import Any, Iterable

import attrs
import pluggy

from dk import hookspecs
from dk.errors import PluginNotFound, StageNotImplemented
from dk.hooks import PROJECT_NAME

ENTRY_POINT_GROUP = "dk"
CORE_PLUGIN_NAME = "core"

#: Statuses shown by ``dk doctor``.
OK = "ok"
MISSING_DEPENDENCY = "missing-dependency"
NO_DEVICE = "no-device"
IMPORT_ERROR = "import-error"
INCOMPATIBLE_HOOKS = "incompatible-hooks"

STAGE_HOOKS = {
    "export": "dk_export",
    "quantize": "dk_quantize",
    "load": "dk_load_engine",
    "infer": "dk_infer",
    "describe": "dk_describe",
}


@attrs.define
class PluginRecord:
    """One plugin as found by discovery, loaded or not."""

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    status: str = OK
    error: str = ""
    plugin: ModuleType | Any | None = None

    @property
    def loaded(self) -> bool:
        return self.plugin is not None


def strict_mode() -> bool:
    return os.environ.get("DK_STRICT_PLUGINS", "").strip() not in ("", "0", "false", "no")


def _allowed_names() -> set[str] | None:
    raw = os.environ.get("DK_LOAD_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _describe_import_error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        return MISSING_DEPENDENCY, f"needs the Python package {top!r}: pip install {top}"
    return IMPORT_ERROR, f"{type(exc).__name__}: {exc}"


class PluginManager:
    """dk's registry of plugins: discovery, fault-tolerant loading and stage dispatch."""

    def __init__(self, entry_points: Iterable[metadata.EntryPoint] | None = None):
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._entry_points = {}
        eps = entry_points if entry_points is not None else metadata.entry_points(group=ENTRY_POINT_GROUP)
        allowed = _allowed_names()
        for ep in eps:
            if allowed is not None and ep.name not in allowed:
                continue
            dist = getattr(ep, "dist", None)
            self._entry_points[ep.name] = ep
            self.records[ep.name] = PluginRecord(
                name=ep.name,
                module=ep.value,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
                status="not-loaded",
            )
        from dk import builtin

        self.register(builtin, CORE_PLUGIN_NAME, distribution="dk-core", version=_core_version())

    # -- loading ----------------------------------------------------------------------------

    def register(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> PluginRecord:
        """Register an already imported plugin object (used for the core plugin and in tests)."""
        record = self.records.get(name) or PluginRecord(
            name=name, module=getattr(plugin, "__name__", repr(plugin)), distribution=distribution, version=version
        )
        self.records[name] = record
        self._register_checked(record, plugin)
        return record

    def load(self, name: str) -> PluginRecord:
        """Load one plugin by entry-point name, recording (not raising) any failure."""
        record = self.records.get(name)
        if record is None:
            raise PluginNotFound(self._unknown_plugin_message(name))
        if record.status != "not-loaded":
            return record
        try:
            plugin = self._entry_points[name].load()
        except Exception as exc:  # a broken plugin must never break the CLI
            if strict_mode():
                raise
            record.status, record.error = _describe_import_error(exc)
            return record
        self._register_checked(record, plugin)
        return record

    def load_all(self) -> list[PluginRecord]:
        for name in list(self.records):
            self.load(name)
        return sorted(self.records.values(), key=lambda r: (r.name != CORE_PLUGIN_NAME, r.name))

    def _register_checked(self, record: PluginRecord, plugin: Any) -> None:
        try:
            self.pm.register(plugin, name=record.name)
            self.pm.check_pending()
        except Exception as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            if strict_mode():
                raise
            record.status, record.error = INCOMPATIBLE_HOOKS, f"{type(exc).__name__}: {exc}"
            return
        record.plugin = plugin
        record.status, record.error = OK, ""

    # -- lookup and dispatch ----------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(n for n in self.records if n != CORE_PLUGIN_NAME)

    def get(self, name: str) -> PluginRecord:
        """The loaded plugin ``name``, or :class:`PluginNotFound` saying why it cannot be used."""
        record = self.load(name)
        if not record.loaded:
            raise PluginNotFound(
                f"plugin {name!r} is installed but failed to load ({record.status}): {record.error}; "
                "run 'dk doctor' for details"
            )
        return record

    def _unknown_plugin_message(self, name: str) -> str:
        import difflib

        known = ", ".join(self.names()) or "none"
        hint = ""
        if os.environ.get("DK_LOAD_PLUGINS") is not None:
            hint = " (DK_LOAD_PLUGINS restricts loading)"
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
        if close:
            return f"no plugin named {name!r}{hint}; did you mean {close[0]!r}? Installed plugins: {known}"
        return (
            f"no plugin named {name!r}{hint}; installed plugins: {known}. "
            f"Install it (pip install ./plugins/{name}) or pick another with --plugin"
        )

    def implements(self, name: str, hook_name: str) -> bool:
        record = self.get(name)
        hook = getattr(self.pm.hook, hook_name)
        return any(impl.plugin is record.plugin and not impl.hookwrapper and not impl.wrapper
                   for impl in hook.get_hookimpls())

    def call_stage(self, name: str, stage: str, **kwargs: Any) -> Any:
        """Call the stage hook of plugin ``name`` only (wrappers of other plugins still run)."""
        hook_name = STAGE_HOOKS.get(stage, stage)
        record = self.get(name)
        if not self.implements(name, hook_name):
            raise StageNotImplemented(
                f"plugin {name!r} does not implement stage {stage!r} ({hook_name}); "
                "see 'dk doctor' for what each plugin can do"
            )
        hook = getattr(self.pm.hook, hook_name)
        others = []
        for impl in hook.get_hookimpls():
            if impl.plugin is record.plugin or impl.hookwrapper or impl.wrapper:
                continue
            others.append(impl.plugin)
        caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others) if others else hook
        return caller(**kwargs)

    @property
    def hook(self) -> Any:
        """Broadcast hooks (``dk_postprocess``, ``dk_collect_hw_stats``) over loaded plugins."""
        return self.pm.hook


def _core_version() -> str:
    from dk import __version__

    return __version__


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (created on first use; loads plugins only on demand)."""
    global _manager
    if _manager is None:
        _manager = PluginManager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests use this after changing ``DK_LOAD_PLUGINS``)."""
    global _manager
    _manager = None

