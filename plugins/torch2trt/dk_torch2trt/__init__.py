"""dk-plugin-torch2trt: torch models to TensorRT through torch2trt. Hooks in
:mod:`dk_torch2trt.plugin`; torch, tensorrt and torch2trt are imported inside functions only."""
