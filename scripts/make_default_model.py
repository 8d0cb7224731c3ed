"""Train the embedded default model and write its files into core/dk/default_model/.

Needs torch, onnx and scikit-learn (the 8x8 digits dataset ships inside scikit-learn, so this
runs offline). Deterministic: the same versions give the same files.

    pip install torch==2.13.0 scikit-learn ./core ./plugins/torch
    python scripts/make_default_model.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dk_torch.models import DigitsNet

OUT = Path(__file__).resolve().parents[1] / "core" / "dk" / "default_model"
SEED = 0
EPOCHS = 40
CALIB_SIZE = 128
SCALE = 1.0 / 16.0


def train() -> None:
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    x = digits.images.astype(np.uint8)  # 0..16
    y = digits.target.astype(np.uint8)
    x_train, x_eval, y_train, y_eval = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    calib_idx = np.random.default_rng(SEED).choice(len(x_train), CALIB_SIZE, replace=False)

    xt = torch.from_numpy(x_train.astype(np.float32) * SCALE)[:, None]
    yt = torch.from_numpy(y_train.astype(np.int64))
    model = DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        xe = torch.from_numpy(x_eval.astype(np.float32) * SCALE)[:, None]
        accuracy = float((model(xe).argmax(1).numpy() == y_eval).mean())
    print(f"held-out accuracy: {accuracy:.4f} on {len(y_eval)} images", file=sys.stderr)

    np.savez_compressed(OUT / "digits_cnn_weights.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
    np.savez_compressed(
        OUT / "digits_data.npz",
        x_eval=x_eval, y_eval=y_eval, x_calib=x_train[calib_idx], y_calib=y_train[calib_idx],
    )
    torch.onnx.export(
        model, (xe[:1],), str(OUT / "digits_cnn.onnx"), dynamo=False, opset_version=17,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    meta = {
        "name": "digitsnet",
        "version": "1.0",
        "variant": "default",
        "task": "classification",
        "dataset": "scikit-learn digits (8x8), stratified 80/20 split, seed 0",
        "labels": [str(i) for i in range(10)],
        "preprocessing": {
            "layout": "NCHW", "colour": "gray", "input_range": [0, 16], "scale": SCALE,
            "mean": [0.0], "std": [1.0], "resize": None,
        },
        "eval_size": int(len(y_eval)),
        "calib_size": CALIB_SIZE,
        "trained_accuracy": round(accuracy, 4),
        "made_with": {"torch": torch.__version__, "script": "scripts/make_default_model.py"},
    }
    (OUT / "model.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    train()
