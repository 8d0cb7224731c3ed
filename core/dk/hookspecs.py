"""Hook specifications: the public API between dk's core and its plugins.

A plugin is a module (registered in the ``dk`` entry-point group) with functions decorated by
``@dk.hookimpl`` whose names and arguments match the specifications below. A plugin implements
only the hooks it needs and may accept any subset of each hook's arguments.

Stage hooks (``dk_export``, ``dk_quantize``, ``dk_load_engine``, ``dk_infer``) are *dispatched*:
core calls them only on the plugin the user named with ``--plugin`` (plus hook wrappers of other
plugins), so an implementation never has to check whether the call is meant for it.
``dk_postprocess`` and ``dk_collect_hw_stats`` are *broadcast* to every plugin.

The importing of a plugin module must stay cheap: import torch, onnxruntime, openvino or
tensorrt inside the hook functions that need them, never at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from dk.hooks import hookspec

if TYPE_CHECKING:
    import numpy as np

    from dk.artifacts import Artifact
    from dk.engine import Engine
    from dk.specs import ExportRequest, HwSample, PluginInfo, QuantizeRequest
    from dk.vision.dataset import Dataset


# -------------------------------------------------------------------------
# Discovery
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def dk_describe(probe: bool) -> PluginInfo | None:
    """Describe this plugin for ``dk doctor``: what it does and whether it works here.

    :param probe:
        ``False`` for plain ``dk doctor``: answer from cheap checks only (is the library
        importable, via ``importlib.util.find_spec``; its version from package metadata). ``True``
        for ``dk doctor --probe``: the plugin may import its engine library and list real devices.

    :return: A :class:`~dk.specs.PluginInfo`. When ``available`` is false, ``reason`` says why in
        one line and what to install or change, and ``status`` is ``missing-dependency`` or
        ``no-device``.

    Called once per plugin by ``dk doctor`` (dispatched: each plugin describes only itself).
    Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Build stages
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def dk_export(request: ExportRequest) -> Artifact | None:
    """Build this plugin's deployable artifact from a model.

    :param request:
        The model source, output folder, precision, shapes and dynamic axes, opset and
        plugin-specific ``options`` (:class:`~dk.specs.ExportRequest`).

    :return: The :class:`~dk.artifacts.Artifact` that was written or reused. Write it with
        :func:`dk.artifacts.build_artifact`, which names the folder by convention, writes the
        ``dk.json`` manifest, makes the write atomic and reuses a cached result when the cache key
        (source bytes, build options, library versions) matches.

    Raise :class:`dk.errors.DkError` subclasses with a one-line message for bad input.
    A plugin that needs ONNX from a torch model gets it with :func:`dk.sources.resolve_onnx`,
    which calls the ``torch`` plugin's export.

    Called once per ``dk run export``. Dispatched to the ``--plugin`` plugin.
    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def dk_quantize(request: QuantizeRequest) -> Artifact | None:
    """Quantize a model (post-training with calibration data, dynamic, or QAT/explicit Q/DQ).

    :param request:
        The model to quantize, the calibration feeds (a callable returning a fresh iterable of
        ``{input name: array}`` each time) and the method (:class:`~dk.specs.QuantizeRequest`).

    :return: The quantized :class:`~dk.artifacts.Artifact`, with ``precision`` ``int8`` in its
        manifest and the calibration set named in its options.

    Called once per ``dk run quantize``. Dispatched to the ``--plugin`` plugin.
    Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Run stages
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def dk_load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Engine | None:
    """Open an artifact as an engine ready to run on a device.

    :param artifact: An artifact written by this plugin's export or quantize. Engines that run
        ONNX may accept any artifact of format ``onnx``; others (the torch engine) refuse artifacts
        of other plugins with a :class:`dk.errors.ModelError` naming the plugin to use.
    :param device: ``cpu``, ``cuda``, ``cuda:1``, ``tensorrt``..., as the user gave it.
        Raise :class:`dk.errors.DeviceError` naming what is missing when it is not available.
    :param options: Plugin-specific runtime options (``--option key=value``).

    :return: An :class:`~dk.engine.Engine`: ``infer(inputs) -> outputs`` on numpy arrays keyed by
        tensor name, ``close()``, and ``inputs``/``outputs`` tensor specs.

    Called by ``dk run infer|bench|all`` and ``dk compare``. Dispatched to the ``--plugin``
    plugin. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def dk_infer(engine: Engine, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Run one stage-level inference (``dk run infer``).

    :param engine: The engine returned by this plugin's :func:`dk_load_engine`.
    :param inputs: Input arrays by name.

    :return: Output arrays by name. A plugin need not implement this hook: core then calls
        ``engine.infer(inputs)``. Hot loops (benchmarks, serving) always call ``Engine.infer``
        directly; implement this hook only to add stage-level behaviour such as logging.

    Dispatched to the ``--plugin`` plugin. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def dk_postprocess(
    task: str, outputs: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> list[Any] | None:
    """Turn raw engine outputs into task results, one entry per sample of the batch.

    :param task: The model's task from its manifest: ``classification``, ``detection``...
    :param outputs: Raw output arrays by name.
    :param meta: The manifest's ``model`` section (labels, score thresholds, ...).

    :return: Results for the task, or ``None`` when this plugin does not handle ``task``.
        dk's core handles ``classification`` (softmax, top-k with labels) and ``detection``
        (decode, score threshold, per-class NMS; see :mod:`dk.vision.detection`).

    Broadcast to every plugin; the first that knows the task answers.
    Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Platform
# -------------------------------------------------------------------------


@hookspec
def dk_collect_hw_stats() -> Sequence[HwSample]:
    """Sample this platform's hardware statistics now.

    :return: A list of :class:`~dk.specs.HwSample` (CPU utilisation, RSS, GPU utilisation, memory,
        temperature, power ...), or an empty list when this plugin has nothing to report here.
        Must return within a few milliseconds: it is called periodically from a background thread
        while benchmarks run. An exception is reported once and the plugin is not asked again.

    Broadcast to every plugin; all results are collected.
    """


# -------------------------------------------------------------------------
# Data
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def dk_load_dataset(location: str, split: str) -> Dataset | None:
    """Open a labelled dataset for calibration and evaluation (``--data PATH``).

    :param location: What the user passed to ``--data``: a folder or a file (never ``.npz``,
        which core reads itself). Answer ``None`` for a location this plugin does not recognise.
    :param split: ``calib`` (calibration for int8) or ``eval`` (accuracy). A plugin that knows
        the source's own splits may pick one (for example ``train/`` for ``calib``, ``val/`` for
        ``eval``); otherwise both see the same items.

    :return: A :class:`~dk.vision.dataset.Dataset`: task, class names and items (image path with a class
        index or boxes), whose ``calibration(size, seed)`` and ``evaluation(limit)`` iterators
        decode the images. Raise :class:`dk.errors.DkError` with one line for a source that is
        recognised but unusable (unparsable, no images); record what could be skipped (missing
        files, bad entries) in ``Dataset.warnings`` and go on.

    Called by ``dk run quantize|bench|all --data PATH``. Broadcast to every plugin (the
    ``datatool`` plugin reads DataTool ``dataset.json``, image folders and COCO files).
    Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Sweeps
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def dk_sweep_runner(name: str, address: str | None, options: Mapping[str, Any]) -> Any:
    """Provide a runner that measures the cells of a benchmark sweep somewhere else.

    :param name: The runner the user asked for: ``dk run bench --runner NAME`` (``--ray ADDRESS``
        is ``--runner ray`` with an address). Answer ``None`` for a name this plugin does not
        provide; ``local`` (the in-process runner) is core's own and never asked for.
    :param address: Where the runner should connect (a cluster address, ``auto``), or None.
    :param options: Runner settings from the command line: ``shared_dir`` (a folder every node
        sees, to build artifacts in instead of shipping them), or None.

    :return: An object with the :class:`dk.bench.runners.SweepRunner` protocol: ``name``, ``local``
        (False: cells run elsewhere and each run carries its own hardware samples), ``run(plan,
        opts, document, sampler, progress)`` which appends run records to ``document["runs"]`` as
        they arrive, adds speed-ups with :func:`dk.bench.execution.add_speedups`, and on
        ``KeyboardInterrupt`` cancels what is outstanding and re-raises; and ``describe()``, a
        JSON-ready dict recorded as ``document["runner"]``. A runner measures a cell with
        :func:`dk.bench.execution.run_cell`, so every runner's runs have the same fields. Raise
        :class:`dk.errors.DkError` with one line when the runner cannot start (library missing,
        cluster unreachable).

    Called once by ``dk run bench`` before anything is built. Broadcast to every plugin (the
    ``ray`` plugin provides ``ray``). Stops at first non-None result.
    """
