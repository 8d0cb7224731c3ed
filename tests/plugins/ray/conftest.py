"""A two-node local Ray cluster for the ray runner's tests, started once per module.

Node ``alpha`` (the head) and node ``beta`` each advertise one fleet target and one CPU. A test
plugin ``crashy`` (the ort engine, whose load kills its worker process as told by a file, whose
cells can be held until the test releases them, and which leaves a file in its folder each time
the driver collects a cell's result) is installed on PYTHONPATH before the cluster starts, so that
the nodes' workers see it too.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from tests.conftest import make_distribution

ray = pytest.importorskip("ray", reason="ray is not installed (pip install ./plugins/ray)")

CRASHY = '''
import os
import time
from pathlib import Path
from dk.hooks import hookimpl

FOLDER = Path(os.environ["DK_CRASHY_DIR"])

@hookimpl
def dk_export(request):
    from dk_ort.export import export_onnx
    return export_onnx(request)

@hookimpl
def dk_load_engine(artifact, device, options):
    from dk_ort.engine import load_engine
    mode = (FOLDER / "mode").read_text().strip() if (FOLDER / "mode").exists() else "never"
    earlier = len(list(FOLDER.glob("load-*")))
    (FOLDER / f"load-{os.getpid()}-{earlier}").touch()
    if mode == "always" or (mode == "once" and earlier == 0):
        os._exit(1)  # the worker process dies in the middle of the cell
    engine = load_engine(artifact, device, options)
    engine.reset_timings = cell_starts
    return engine

def cell_starts():
    # dk calls reset_timings before it measures each batch: a trace of every cell that starts
    (FOLDER / f"cell-{os.getpid()}-{time.monotonic_ns()}").touch()
    hold = FOLDER / "hold"  # "N": cells after the first N wait until the test writes the file "release"
    if hold.exists() and ticket() >= int(hold.read_text()):
        while not (FOLDER / "release").exists():
            time.sleep(0.02)

def ticket():
    # this cell's place among the cells that started (O_EXCL: two nodes never draw the same one)
    number = 0
    while True:
        try:
            os.close(os.open(FOLDER / f"ticket-{number}", os.O_CREAT | os.O_EXCL))
            return number
        except FileExistsError:
            number += 1

def _record_arrivals():
    # in the driver: a file per cell whose result the ray runner has collected, for tests to wait on
    try:
        import dk_ray.runner as runner
    except ImportError:
        return
    collect = runner._collect
    def recording(*args, **kwargs):
        runs = collect(*args, **kwargs)
        (FOLDER / f"arrived-{time.monotonic_ns()}").touch()
        return runs
    if not getattr(collect, "records_arrivals", False):
        recording.records_arrivals = True
        runner._collect = recording

_record_arrivals()
'''


@contextlib.contextmanager
def cluster_environment(base: Path):
    """PYTHONPATH with the crashy plugin, its folder and a node cache, set in os.environ (which the
    cluster's nodes inherit) while the block runs; yields (environment, crashy folder)."""
    site = make_distribution(base / "site", "dk-test-crashy", {"crashy": CRASHY})
    crashy = base / "crashy"
    crashy.mkdir()
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "DK_CRASHY_DIR", "DK_RAY_CACHE", "RAY_AUTH_MODE")}
    env = {"PYTHONPATH": os.pathsep.join(p for p in [str(site), str(Path.cwd()), saved["PYTHONPATH"]] if p),
           "DK_CRASHY_DIR": str(crashy), "DK_RAY_CACHE": str(base / "cache"), "RAY_AUTH_MODE": "disabled"}
    os.environ.update(env)
    try:
        yield env, crashy
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def node_ids(address: str, tags: tuple[str, ...]) -> dict[str, str]:
    """Node id by the dk target each node advertises."""
    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    try:
        return {tag: node["NodeID"] for node in ray.nodes() for tag in tags
                if node["Alive"] and f"dk-target:{tag}" in node["Resources"]}
    finally:
        ray.shutdown()  # the tests connect through the CLI, in their own processes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(address, {"alpha": node_id, "beta": node_id}, crashy folder, environment for dk)."""
    from ray.cluster_utils import Cluster

    with cluster_environment(tmp_path_factory.mktemp("ray")) as (env, crashy):
        head = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"dk-target:alpha": 1},
                                                            "include_dashboard": False})
        try:
            beta = head.add_node(num_cpus=1, resources={"dk-target:beta": 1})
            head.wait_for_nodes()
            ids = node_ids(head.address, ("alpha", "beta"))
            assert ids["beta"] == beta.node_id
            yield head.address, ids, crashy, env
        finally:
            head.shutdown()


@pytest.fixture
def crashy_mode(cluster):
    """Set how the crashy engine behaves (never, once, always; ``hold=N``: cells after the first N wait
    for the file ``release``) and forget earlier loads, cells and arrivals."""
    folder = cluster[2]

    def set_mode(mode: str, hold: int | None = None) -> Path:
        for pattern in ("load-*", "cell-*", "ticket-*", "arrived-*", "hold", "release"):
            for path in folder.glob(pattern):
                path.unlink()
        (folder / "mode").write_text(mode)
        if hold is not None:
            (folder / "hold").write_text(str(hold))
        return folder

    return set_mode


def wait_for_files(folder, pattern: str, count: int, process, timeout: float = 120) -> None:
    """Wait until ``count`` files match ``pattern`` (files the crashy plugin writes as cells start and
    results arrive); fails when the process ends first."""
    deadline = time.monotonic() + timeout
    while len(list(folder.glob(pattern))) < count:
        assert process.proc.poll() is None, process.output()
        assert time.monotonic() < deadline, f"fewer than {count} {pattern} files after {timeout} s\n{process.output()}"
        time.sleep(0.02)
