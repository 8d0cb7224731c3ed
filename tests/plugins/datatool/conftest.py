"""Fixtures for the datatool plugin: real images made at test time from the digits split."""

from __future__ import annotations

import pytest

pytest.importorskip("PIL", reason="Pillow is not installed (pip install pillow)")
pytest.importorskip("dk_datatool", reason="dk-plugin-datatool is not installed (pip install ./plugins/datatool)")
