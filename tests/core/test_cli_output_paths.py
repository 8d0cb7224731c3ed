"""Output paths are checked before a benchmark or report runs, so that no result is lost at the end."""

from __future__ import annotations

import pytest

from dk.cli.output_paths import check_output_file
from dk.errors import UsageError
from tests.conftest import run_dk


def _refused(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bench_output_that_is_a_folder_is_refused_before_anything_is_built(tmp_path):
    (tmp_path / "m").mkdir()
    proc = run_dk("run", "bench", "--plugin", "ort", "--output", str(tmp_path / "m"), "--out", str(tmp_path / "art"))
    assert _refused(proc) == f"error: --output {tmp_path / 'm'} is a folder; give a file path, e.g. --output " \
                              f"{tmp_path / 'm' / 'results.json'}"
    assert not (tmp_path / "art").exists()


def test_bench_output_under_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    proc = run_dk("run", "bench", "--plugin", "ort", "--output", str(tmp_path / "f" / "r.json"),
                  "--out", str(tmp_path / "art"))
    assert "is a file, so no folder can be made there" in _refused(proc)
    assert not (tmp_path / "art").exists()


def test_bench_output_and_csv_must_differ(tmp_path):
    path = str(tmp_path / "r.json")
    line = _refused(run_dk("run", "bench", "--plugin", "ort", "--output", path, "--csv", path))
    assert line == f"error: --output and --csv both name {path}; give each its own file"


def test_an_output_in_a_folder_not_made_yet_is_accepted_and_nothing_is_created(tmp_path):
    target = tmp_path / "new" / "deeper" / "r.json"
    assert check_output_file(target, "--output") == target
    assert not (tmp_path / "new").exists()


def test_check_output_file_names_the_option():
    with pytest.raises(UsageError, match=r"^--csv / is a folder; give a file path"):
        check_output_file("/", "--csv", "results.csv")
