"""The lpdnn plugin's options, in one place: what export and load accept, and the check both use."""

from __future__ import annotations

from typing import Mapping

from dk.errors import UsageError

URL_ENV = "DK_LPDNN_URL"
EXPORT_OPTIONS = {
    "url": f"worker URL (http://HOST:PORT); default ${URL_ENV}; without one an LPDNN package is built",
    "model": "model name on the worker (default: the only one it serves)",
    "app_config": "path of an existing LPDNN ai_app_config.json to run with its http-worker",
    "engine": "LPDNN engine of the package: onnxruntime (default), lne, tensorrt, ncnn",
    "deployment_package": "LPDNN deployment package (default x86_64-ubuntu20)",
    "timeout": "seconds to wait for the worker (default 30)",
    "retries": "retries after a connection error (default 3)",
}
LOAD_OPTIONS = {
    "url": "worker URL, overrides the one recorded in the artifact",
    "timeout": "seconds to wait for an answer (default 30)",
    "retries": "retries after a connection error, with exponential backoff (default 3)",
    "binary": "1 (default) sends tensors as raw bytes; 0 as JSON lists",
    "port": "ai-app artifacts: port for the started LPDNN worker (default: a free one)",
}


def check_options(options: Mapping[str, str], known: Mapping[str, str], what: str) -> None:
    """Refuse option keys no stage of this plugin knows, listing this stage's valid ones. Keys of the
    other stage pass: ``dk run bench -o binary=0`` gives the same options to export and load."""
    unknown = sorted(set(options) - {*EXPORT_OPTIONS, *LOAD_OPTIONS})
    if unknown:
        valid = "; ".join(f"{k}: {v}" for k, v in known.items())
        raise UsageError(f"unknown lpdnn {what} option(s) {', '.join(unknown)}; valid options are {valid}")
