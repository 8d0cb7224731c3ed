"""dk-plugin-ort: ONNX Runtime for dk (export/optimise, int8 PTQ, engines). The hooks are in
:mod:`dk_ort.plugin`; nothing heavy is imported here."""
