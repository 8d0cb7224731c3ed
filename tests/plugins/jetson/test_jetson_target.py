"""The fleet target tag of a Jetson, from its device-tree model."""

from __future__ import annotations

import pytest

from dk_jetson.board import target_tag


@pytest.mark.parametrize("model, tag", [
    ("NVIDIA Jetson AGX Orin Developer Kit", "jetson-orin"), ("NVIDIA Orin Nano Developer Kit", None),
    ("NVIDIA Jetson Orin Nano Developer Kit", "jetson-orin"), ("Jetson-AGX", "jetson"),
    ("NVIDIA Jetson Xavier NX Developer Kit", "jetson-xavier"), ("NVIDIA Jetson Nano Developer Kit", "jetson-nano"),
    ("quill", None), ("Raspberry Pi 4 Model B Rev 1.4", None), (None, None)])
def test_target_tag_names_the_module_family(model, tag):
    assert target_tag(model) == tag
