"""``dk serve``: an HTTP worker (starlette on uvicorn) in front of any dk engine.

Endpoints: ``POST /inference`` (raw JPEG/PNG, the Bonseyes/LPDNN worker style), the Open Inference
Protocol v2 (``/v2/...``, KServe/Triton, JSON or binary tensors), ``GET /metrics`` (Prometheus) and,
with ``--allow-upload`` only, an ONNX upload into the artifact store. Needs the ``serve`` extra.

Modules import only downward: limits, config, metrics, trace -> bodies, responses, batching,
jsonpieces -> runner -> worker -> tensors, classification, images, upload -> handlers -> app;
protocol and server run it on uvicorn (tests/core/test_serve_layers.py checks there is no circle).
"""

from __future__ import annotations

import importlib.util

from dk.errors import MissingDependency

#: Import name -> distribution name of what ``pip install "dk-core[serve]"`` installs.
SERVE_DEPENDENCIES = {"starlette": "starlette", "uvicorn": "uvicorn", "httptools": "httptools", "PIL": "Pillow"}


def require_serve_dependencies() -> None:
    """Raise :class:`MissingDependency` naming the extra when starlette, uvicorn or Pillow is absent."""
    missing = [dist for module, dist in SERVE_DEPENDENCIES.items() if not _importable(module)]
    if missing:
        raise MissingDependency(
            f"dk serve needs {', '.join(missing)}, which is not installed: pip install \"dk-core[serve]\""
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken parent package
        return False
