"""dk plugin ``trt``: TensorRT engines from ONNX (fp32/fp16/int8, profiles, DLA, engine cache).

Thin hooks only (:mod:`dk_trt.hooks`): each imports its stage module (``doctor``, ``export``,
``quantize``, ``runtime``) when called, so importing this module stays cheap.
"""

from dk_trt.hooks import engine_hooks

dk_describe, dk_export, dk_quantize, dk_load_engine = engine_hooks("dk_trt")
