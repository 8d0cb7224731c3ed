"""Task post-processing shared by every engine."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def classify(logits: np.ndarray, labels: Sequence[str] | None = None, top_k: int = 5) -> list[dict[str, Any]]:
    """Per sample: the top-k classes with probabilities, best first."""
    logits = np.asarray(logits, dtype=np.float32).reshape(len(logits), -1)
    probs = softmax(logits)
    k = min(top_k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    results = []
    for row, idx in zip(probs, top):
        results.append({
            "top_k": [
                {"class": int(i), "label": labels[i] if labels and i < len(labels) else str(int(i)), "score": float(row[i])} for i in idx
            ]
        })
    return results
