"""Fixtures for the torch plugin's tests: exports into tmp_path and tiny importable torch models."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

torch = pytest.importorskip(
    "torch", reason="the torch plugin's tests need torch: pip install torch==2.13.0"
)

from dk import api  # noqa: E402
from dk.specs import ExportRequest, ModelSource  # noqa: E402

TINY_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


    def make_tiny():
        torch.manual_seed(0)
        return TinyNet()


    def not_a_model():
        return 42
    """
)


@pytest.fixture
def export_default(tmp_path):
    """Export the default model into tmp_path with ExportRequest overrides."""

    def export(**overrides):
        request = ExportRequest(
            source=ModelSource("default", "dk:digitsnet"), out_dir=tmp_path / "out", **overrides
        )
        return api.export("torch", request)

    return export


@pytest.fixture
def tiny_module(tmp_path, monkeypatch):
    """A module on sys.path with ``make_tiny`` (3x16x16 -> 5) and ``not_a_model``; its name."""
    name = f"tiny_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(TINY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def tiny_weights(tiny_module, tmp_path):
    """A TinyNet and its state dict saved with torch.save (different from make_tiny()'s weights)."""
    module = __import__(tiny_module)
    torch.manual_seed(1)
    model = module.TinyNet().eval()
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    return model, path
