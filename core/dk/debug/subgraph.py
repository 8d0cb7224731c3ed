"""Prefix subgraphs: the graph cut at chosen tensors with ``onnx.utils.extract_model``.

Used for engines that cannot return marked intermediate tensors (a remote worker that answers only
the model's declared outputs) and to write the subgraph up to the first divergence for a bug report.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Sequence

from dk.errors import DkError


def write_prefix(model_path: Path, outputs: Sequence[str], target: Path) -> Path:
    """Write the part of ``model_path`` that computes ``outputs`` from the graph inputs to ``target``
    (a temp name first, then renamed, so a failure leaves nothing half-written)."""
    import onnx
    import onnx.utils

    model = onnx.load(str(model_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        onnx.utils.extract_model(str(model_path), str(tmp), inputs, list(outputs), check_model=False)
        os.replace(tmp, target)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        raise DkError(f"cannot cut {model_path.name} at {', '.join(outputs)}: {' '.join(str(exc).split())[:300]}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
