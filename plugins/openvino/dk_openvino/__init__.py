"""dk-plugin-openvino: OpenVINO IR export, fp16 compression, NNCF int8, sync and async engines.
The hooks are in :mod:`dk_openvino.plugin`; nothing heavy is imported here."""
