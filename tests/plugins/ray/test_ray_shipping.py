"""Artifacts and input files shipped between nodes: round trip, reuse, races and unsafe archives."""

from __future__ import annotations

import io
import tarfile

import pytest

from dk.artifacts import Artifact
from dk.pipeline import BuildOptions, export
from dk_ray import shipping


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    return export("ort", "fp32", BuildOptions(out=tmp_path_factory.mktemp("built")))


def test_an_artifact_arrives_verified_and_is_unpacked_once_per_node(artifact, tmp_path):
    payload = shipping.pack_dir(artifact.path)
    key = artifact.manifest["cache_key"]
    first = shipping.unpack_artifact(payload, key, "ort/" + artifact.path.name, cache=tmp_path)
    first.verify()  # every file's sha256 matches the manifest
    assert first.manifest == artifact.manifest
    assert first.path == tmp_path / "shipped" / key[:32] / "ort" / artifact.path.name
    marker = first.path / "dk.json"
    mtime = marker.stat().st_mtime_ns
    again = shipping.unpack_artifact(payload, key, "ort/" + artifact.path.name, cache=tmp_path)
    assert again.path == first.path and marker.stat().st_mtime_ns == mtime  # reused, not unpacked again


def test_a_foreign_folder_in_the_way_is_left_alone(artifact, tmp_path):
    payload = shipping.pack_dir(artifact.path)
    key = artifact.manifest["cache_key"]
    squatter = tmp_path / "shipped" / key[:32] / "ort" / artifact.path.name
    squatter.mkdir(parents=True)
    (squatter / "dk.json").write_text("{}")
    got = shipping.unpack_artifact(payload, key, "ort/" + artifact.path.name, cache=tmp_path)
    assert got.path != squatter and got.manifest["cache_key"] == key
    assert (squatter / "dk.json").read_text() == "{}"


def test_an_archive_that_escapes_its_folder_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(tarfile.TarError):
        shipping.unpack_artifact(buffer.getvalue(), "k" * 64, "ort/x", cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "shipped" / ("k" * 32) / "escaped.txt").exists()
    assert not any(p.name.startswith(".x.tmp") for p in (tmp_path / "cache").rglob("*"))  # nothing half-written


def test_input_files_are_placed_by_content(tmp_path):
    a = shipping.place_file(b"weights-1", "model.pt", cache=tmp_path)
    b = shipping.place_file(b"weights-2", "/elsewhere/model.pt", cache=tmp_path)
    assert a.read_bytes() == b"weights-1" and b.read_bytes() == b"weights-2" and a != b
    assert a.name == b.name == "model.pt"
    assert shipping.place_file(b"weights-1", "model.pt", cache=tmp_path) == a
