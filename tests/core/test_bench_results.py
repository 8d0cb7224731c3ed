"""Result documents: regression comparison, fractions, environment record."""

from __future__ import annotations

import pytest

from dk.bench import environment
from dk.bench.results import compare, load, parse_fraction, to_csv, write_json
from dk.errors import UsageError
from dk.plugins import get_plugin_manager


def run(engine="ort", precision="fp32", batch=1, p50=1.0, throughput=1000.0, accuracy=0.9, status="ok"):
    return {"engine": engine, "precision": precision, "batch": batch, "input_shape": [batch, 3], "status": status,
            "accuracy": accuracy, "latency": {"p50_ms": p50, "throughput": throughput}}


def test_fractions():
    assert parse_fraction("5%") == 0.05 and parse_fraction("0.1") == 0.1
    with pytest.raises(UsageError, match="not a percentage"):
        parse_fraction("five")
    assert parse_fraction("1") == 1.0 and parse_fraction("150%") == 1.5  # explicit percentages may exceed 100


@pytest.mark.parametrize("text, message", [
    ("5", "--max-regression: '5' would allow 500% worse; write 5% for 5 percent (or 0.05 as a fraction)"),
    ("-1%", "--max-regression: '-1%' must be a finite percentage, not negative (e.g. 5%)"),
    ("nan", "--max-regression: 'nan' must be a finite percentage, not negative (e.g. 5%)"),
])
def test_a_bare_number_above_1_and_negative_or_nan_fractions_are_refused(text, message):
    with pytest.raises(UsageError) as error:
        parse_fraction(text)
    assert str(error.value) == message


def test_only_changes_beyond_the_threshold_in_the_bad_direction_count():
    base = {"runs": [run(), run(batch=8, p50=4.0, throughput=2000.0)]}
    current = {"runs": [run(p50=1.04, throughput=960.0, accuracy=0.95),  # 4 % worse: allowed
                        run(batch=8, p50=5.0, throughput=1600.0, accuracy=0.8),  # 25 %, 20 %, 11 % worse
                        run(batch=16)]}  # not in the baseline
    found, matched = compare(current, base, 0.05)
    assert matched == 2
    assert [(r.batch, r.metric, round(r.change, 3)) for r in found] == [
        (8, "p50_ms", 0.25), (8, "throughput", 0.2), (8, "accuracy", 0.111)]


def test_failed_runs_are_not_compared():
    found, matched = compare({"runs": [run(status="failed")]}, {"runs": [run()]}, 0.05)
    assert found == [] and matched == 0


def test_round_trip_and_csv(tmp_path):
    doc = {"schema": "dk.bench/1", "runs": [run()]}
    path = write_json(tmp_path / "sub" / "r.json", doc)
    assert load(path) == doc and [p.name for p in (tmp_path / "sub").iterdir()] == ["r.json"]
    assert to_csv(doc).splitlines()[1].startswith("ort,fp32,1,1x3,,ok,0.9,1.0,")


def test_environment_record(tmp_path):
    record = environment.collect(get_plugin_manager(), cwd=tmp_path)
    assert record["git"] is None and record["cpu"] and record["cpu_cores"] >= 1 and record["ram_gib"] > 0
    assert record["libraries"]["numpy"] and record["plugins"]["core"] == "0.1.0"
    here = environment.git_commit()
    if here is not None:
        assert len(here["commit"]) == 40 and isinstance(here["dirty"], bool)
