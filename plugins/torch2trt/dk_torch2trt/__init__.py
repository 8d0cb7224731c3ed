"""dk-plugin-torch2trt: torch models to TensorRT through torch2trt. Hooks in
:mod:`dk_torch2trt.plugin` (shared with the trt plugin); one module per stage (``doctor``, ``export``,
``quantize``, ``runtime``), options in ``options``. torch, tensorrt and torch2trt are imported inside
functions only."""
