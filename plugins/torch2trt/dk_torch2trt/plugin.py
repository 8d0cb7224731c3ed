"""dk plugin ``torch2trt``: torch -> TensorRT through torch2trt, saved as ``..._trt.pth`` (the
TRTModule state dict) and ``..._trt.engine``.

Thin hooks only, shared with the trt plugin (:mod:`dk_trt.hooks`): each imports its stage module of
this package (``doctor``, ``export``, ``quantize``, ``runtime``) when called.
"""

from dk_trt.hooks import engine_hooks

dk_describe, dk_export, dk_quantize, dk_load_engine = engine_hooks("dk_torch2trt")
