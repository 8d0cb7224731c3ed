"""Imports its "engine library" (pillow, which its distribution declares) at module level."""

import PIL.Image  # noqa: F401 - the mistake under test: its engine library at module level

from tests.core.kit_variants.base import OrtEngine, variant

plugin = variant("kit-heavy", OrtEngine)
