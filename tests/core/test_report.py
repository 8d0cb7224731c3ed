"""``dk report``: self-contained HTML, Markdown with PNGs beside it, from a real sweep's results."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.conftest import run_dk

pytest.importorskip("matplotlib", reason="reports need matplotlib: pip install 'dk-core[report]'")
pytest.importorskip("onnxruntime")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    proc = run_dk("run", "bench", "--plugins", "ort,ort:int8", "--batches", "1,8", "--iterations", "15", "--warmup",
                  "2", "--hw-interval", "0.02", "--out", str(folder / "a"), "--output", str(folder / "r.json"), "--json")
    assert proc.returncode == 0, proc.stderr
    return folder / "r.json"


def test_html_is_self_contained_with_plots_and_tables(results, tmp_path):
    proc = run_dk("report", str(results), "-o", str(tmp_path / "report.html"))
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "report.html").read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert [alt for alt, _ in images] == ["Latency vs batch size", "Throughput vs batch size", "Hardware statistics"]
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for _, data in images)
    assert "http://" not in html and "https://" not in html and list(tmp_path.iterdir()) == [tmp_path / "report.html"]
    for heading in ("Speed-up", "Accuracy", "Hardware statistics", "Model", "Environment"):
        assert f"<h2>{heading}</h2>" in html
    doc = json.loads(results.read_text())
    accuracy = next(r["accuracy"] for r in doc["runs"] if r["precision"] == "int8")
    assert f"<td>{accuracy:.2%}</td>" in html and '<td class="text">15,338 (0.06 MiB)</td>' in html


def test_markdown_writes_pngs_beside_it(results, tmp_path):
    tmp_path = tmp_path / "new-folder"
    proc = run_dk("report", str(results), "-o", str(tmp_path / "bench.md"), "--json")
    assert proc.returncode == 0, proc.stderr
    written = json.loads(proc.stdout)["files"]
    assert written == [str(tmp_path / n) for n in ("bench.md", "bench-latency.png", "bench-throughput.png",
                                                   "bench-hw.png")]
    text = (tmp_path / "bench.md").read_text()
    assert "![Latency vs batch size](bench-latency.png)" in text and "| ort:int8 | 1x |" not in text
    assert "| engine:precision | batch 1 | batch 8 |" in text
    assert all((tmp_path / n).read_bytes().startswith(PNG_MAGIC) for n in ("bench-latency.png", "bench-hw.png"))


def test_a_file_that_is_not_a_result_is_one_error(tmp_path):
    (tmp_path / "other.json").write_text('{"stage": "compare"}')
    proc = run_dk("report", str(tmp_path / "other.json"), "-o", str(tmp_path / "r.html"))
    assert proc.returncode == 2 and not (tmp_path / "r.html").exists()
    assert proc.stderr.strip() == (f"error: {tmp_path / 'other.json'} is not a dk benchmark result "
                                   "(schema None, expected 'dk.bench/1')")
    proc = run_dk("report", str(tmp_path / "other.json"), "-o", str(tmp_path / "r.pdf"))
    assert proc.returncode == 2 and "must end in .html or .md" in proc.stderr


def test_report_refuses_a_layers_document_without_layers(tmp_path):
    (tmp_path / "layers.json").write_text('{"schema": "dk.debug.layers/1"}')
    result = run_dk("report", str(tmp_path / "layers.json"), "-o", str(tmp_path / "r.html"))
    assert result.returncode == 2 and not (tmp_path / "r.html").exists()
    assert result.stderr.strip() == (f"error: {tmp_path / 'layers.json'}: a dk.debug.layers/1 document needs a "
                                     "'layers' list; write it with 'dk debug layers --json > FILE'")
