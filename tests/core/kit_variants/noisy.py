"""Its "engine library" prints a banner on fd 1 when imported, as C libraries do."""

import os

from tests.core.kit_variants.base import OrtEngine, variant

os.write(1, b"libkit 1.0 initialised\n")
plugin = variant("kit-noisy", OrtEngine)
