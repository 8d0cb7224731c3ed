"""``dk run quantize --plugin torch2trt``: int8 through torch2trt's own calibrator (TensorRT 10.x).

torch2trt facts (master 4e820ae31b4e35d59685935223b05b2e11d47b03, torch2trt/dataset_calibrator.py):
its ``DatasetCalibrator`` hands each dataset item's tensors to TensorRT as they are (``data_ptr``) and
says ``get_batch_size() == 1``, and torch2trt.py calibrates on the network's profile, whose opt shape is
the example input's. So every item must have the example's shape, batch axis included.
"""

from __future__ import annotations

from dk.artifacts import Artifact
from dk.errors import UsageError
from dk.specs import QuantizeRequest

from dk_torch2trt.options import QUANTIZE_OPTIONS, check_options, convert_settings


def quantize_engine(request: QuantizeRequest) -> Artifact:
    from dk.shapes import parse_shapes
    from dk.vision.calibration import fingerprint

    from dk_torch2trt.export import convert

    check_options(request.options, QUANTIZE_OPTIONS, "quantize")
    if request.precision != "int8" or request.method != "static":
        raise UsageError("torch2trt quantizes to int8 with calibration data only (--method static)")
    if request.calibration is None:
        raise UsageError("torch2trt int8 needs calibration data: pass --data calib.npz or use the default model")
    settings = convert_settings("int8", request.options)
    options = {**request.build_options(), "calibration": fingerprint(request.calibration)}
    shapes = parse_shapes(request.options.get("shapes"), "-o shapes")
    device = request.export.device if request.export is not None else "cpu"
    return convert(request.source, request.out_dir, shapes, settings, request.force, options, request.calibration,
                   device)
