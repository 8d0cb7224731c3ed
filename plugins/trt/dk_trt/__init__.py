"""dk-plugin-trt: TensorRT engines for dk. The hooks are in :mod:`dk_trt.plugin`; nothing heavy
(tensorrt, pycuda, torch, onnxruntime) is imported by any module at import time."""
