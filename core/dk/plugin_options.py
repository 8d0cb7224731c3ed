"""Checking a plugin's ``-o KEY=VALUE`` options against the list of keys it knows.

A plugin calls :func:`refuse_unknown` in each stage with the keys of all its stages (one
``-o threads=1`` reaches export, quantize and load alike), so that a mistyped key is an error
instead of a value recorded in the manifest and never read. The keys the torch plugin reads when
it turns a torch source into ONNX for another plugin (``output_names``, ``name``, ``task``) pass too."""

from __future__ import annotations

from typing import Mapping

from dk.errors import UsageError

#: Read by the torch plugin while it turns a torch model into ONNX, whichever plugin asked for it.
SOURCE_OPTIONS = {
    "output_names": "torch source: comma-separated ONNX output names, in forward() order",
    "name": "torch source: the model's name in artifact names and manifests",
    "task": "what the model does (same as --task)",
}


def refuse_unknown(plugin: str, options: Mapping[str, str], known: Mapping[str, str]) -> None:
    """One :class:`UsageError` naming the keys of ``options`` that are neither in ``known``
    (key -> meaning) nor source options, and the valid ones; nothing when every key is known."""
    every = {**known, **{k: v for k, v in SOURCE_OPTIONS.items() if k not in known}}
    unknown = sorted(set(options) - set(every))
    if not unknown:
        return
    valid = "; ".join(f"{k}: {v}" for k, v in every.items())
    raise UsageError(f"unknown {plugin} option(s) {', '.join(unknown)}; valid options are {valid} "
                     "(an option meant for one plugin only is written -o PLUGIN:KEY=VALUE)")
