"""Which weight range int8 quantization uses on this CPU, and why (ONNX Runtime's advice).

On x86 without VNNI, ONNX Runtime's u8 x s8 kernels add pairs of products in 16 bits
(``vpmaddubsw``), which saturates with 8-bit weights and loses accuracy silently; ORT's
quantization guide recommends ``reduce_range`` (7-bit weights) there. With VNNI/AMX, or off x86,
full 8-bit weights are exact and more accurate.
"""

from __future__ import annotations

from typing import Mapping

import attrs

from dk.cpu_isa import int8_isa, int8_saturates
from dk.errors import DkError

TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")


@attrs.frozen
class WeightRange:
    """``reduce_range`` for the quantizer, the CPU's int8 code path, and a sentence saying why."""

    reduce_range: bool
    isa: str
    reason: str

    def to_json(self) -> dict[str, object]:
        return attrs.asdict(self)


def cpu_advice() -> str:
    """One line for ``dk doctor``: what int8 quantization does on this CPU."""
    isa = int8_isa()
    if int8_saturates():
        return (f"int8 path {isa} (no VNNI): quantize uses 7-bit weights (reduce_range) so u8s8 kernels "
                "do not saturate")
    return f"int8 path {isa}: quantize uses full 8-bit weights"


def choose_weight_range(options: Mapping[str, str]) -> WeightRange:
    """``-o reduce_range`` when given, else 7-bit weights exactly where the CPU would saturate."""
    isa = int8_isa()
    given = options.get("reduce_range")
    if given is not None:
        value = given.strip().lower()
        if value not in TRUE + FALSE:
            raise DkError(f"option reduce_range={given} is not 0 or 1")
        return WeightRange(value in TRUE, isa, f"reduce_range={int(value in TRUE)} set by -o reduce_range")
    if int8_saturates():
        return WeightRange(True, isa, (
            f"this CPU's int8 path is {isa} without VNNI: weights quantized to 7 bits (reduce_range) so ONNX "
            "Runtime's u8s8 kernels do not saturate; -o reduce_range=0 keeps 8 bits"))
    return WeightRange(False, isa, f"this CPU's int8 path is {isa}: full 8-bit weights")
