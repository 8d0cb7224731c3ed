"""Prefix subgraphs: the graph cut at chosen tensors.

Used for engines that cannot return marked intermediate tensors (a remote worker that answers only
the model's declared outputs), for the builds of a bisection after the first (only the graph up
to the marked tensors is built), and to write the subgraph up to the first divergence for a bug
report. The cut is what ``onnx.utils.extract_model`` makes with every graph input kept, done on
one loaded copy of the model: extract_model loads the file again and runs shape inference over
it (another copy of every weight), which made these cuts the memory peak of a bisection.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from dk.errors import DkError, UsageError


def check_writable(path: Path, flag: str) -> None:
    """Refuse, as a usage error, a file path that cannot be written: a folder, a path under a file,
    or under a folder that is not writable. Checked before any build, so a finished search is not
    thrown away for where its subgraph was to go."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name, e.g. {target / 'first-divergence.onnx'}")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: {folder} is a file, not a folder; give a path in a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in {folder}; give a path in a writable folder")


def write_prefix(model_path: Path, outputs: Sequence[str], target: Path,
                 infos: Mapping[str, Any] | None = None) -> Path:
    """Write the part of ``model_path`` that computes ``outputs`` from the graph inputs to ``target``
    (a temp name first, then renamed, so a failure leaves nothing half-written). ``infos``: typed
    value infos of the graph's tensors (``dk.debug.graph.value_infos``), for the cut's outputs;
    inferred on the graph without its weights when not given."""
    import onnx

    from dk.debug.graph import ancestors_of, load_graph, value_infos

    if infos is None:
        infos = value_infos(load_graph(model_path))

    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        model = onnx.load(str(model_path))  # weights inline in the cut, external data included
        graph = model.graph
        present = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}
        missing = [t for t in outputs if t not in present]
        if missing:
            raise ValueError(f"no node computes {', '.join(missing)}")
        needed = ancestors_of(model, outputs)
        weights = {i.name for i in graph.initializer}
        # IR < 4 lists the weights among the inputs: keep only those of the cut
        _keep(graph.input, lambda value: value.name not in weights or value.name in needed)
        _keep(graph.node, lambda node: any(o in needed for o in node.output))
        _keep(graph.initializer, lambda init: init.name in needed)
        _keep(graph.sparse_initializer, lambda init: init.values.name in needed)
        _keep(graph.value_info, lambda value: value.name in needed)
        known = {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}
        known.update(infos)
        cut = []
        for name in outputs:
            value = onnx.ValueInfoProto()
            if name in known:
                value.CopyFrom(known[name])
            value.name = name
            cut.append(value)
        del graph.output[:]
        graph.output.extend(cut)
        onnx.save(model, str(tmp))
        os.replace(tmp, target)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        raise DkError(f"cannot cut {Path(model_path).name} at {', '.join(outputs)}: "
                      f"{' '.join(str(exc).split())[:300]}") from None
    finally:
        try:
            tmp.unlink()
        except (FileNotFoundError, NotADirectoryError):  # never written (or its folder never made)
            pass
    return target


def _keep(field: Any, wanted: Any) -> None:
    """Delete, in place, the entries of a repeated protobuf field that are not ``wanted`` (no copy
    of those kept: an initializer's weights are not duplicated)."""
    for i in reversed(range(len(field))):
        if not wanted(field[i]):
            del field[i]
