"""Open Inference Protocol v2 (KServe/Triton) tensor datatypes, shared by server and clients."""

#: OIP datatype -> numpy dtype name.
DATATYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
    "FP32": "float32", "FP64": "float64",
}
#: numpy dtype name -> OIP datatype.
NUMPY_TO_DATATYPE = {v: k for k, v in DATATYPES.items()}
