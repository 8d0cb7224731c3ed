"""dk-plugin-trt: TensorRT engines for dk. The hooks are in :mod:`dk_trt.plugin`; nothing heavy
(tensorrt, cuda-python, pycuda, torch, onnxruntime) is imported by any module at import time.

Layout: ``plugin`` (thin hooks from ``hooks``), one module per stage (``doctor``, ``export``,
``quantize``, ``runtime``), options in ``options``; TensorRT calls in ``build``, ``runtime``,
``calibrator`` and ``profile``; CUDA only through ``cudart`` (the seam) and ``buffers``."""
