"""Every TensorRT name the trt and torch2trt plugins use exists in the TensorRT releases they claim.

The name lists in ``data/`` are the string tables of NVIDIA's compiled bindings
(``tensorrt-cu12-bindings`` wheels, made by ``scripts/trt_api_surface.py``; each file names its wheel
and sha256). The plugins' sources are read with ``ast``: every ``trt.A.B`` chain, every method or
property called on a TensorRT object (builder, config, network, parser, runtime, engine, context,
timing cache, profile) and every method dk overrides in a subclass of a ``trt`` class. This checks
names, not behaviour: no engine is built here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dk_trt.build import precision_flags
from dk_trt.options import PROFILING_VERBOSITIES
from dk_trt.versions import REMOVED_IN_11, TORCH2TRT_NEEDS

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).with_name("data")
TEN = ("10.0.1", "10.13.3.9", "10.16.1.11")
ELEVEN = ("11.0.0.114", "11.4.0.106")

#: Variables that hold TensorRT objects, per module (``engine`` in profile.py is dk's TrtEngine).
TRT_OBJECTS = {
    "plugins/trt/dk_trt/build.py": {"builder", "config", "network", "parser", "profile", "fixed", "cache", "other"},
    "plugins/trt/dk_trt/runtime.py": {"runtime", "engine", "context"},
    "plugins/trt/dk_trt/profile.py": {"context"},
}
#: ``self.X`` / ``obj.X`` attributes that hold TensorRT objects (``self.engine.create_execution_context``).
TRT_ATTRIBUTES = {"engine", "context"}
TRT_MODULES = [*TRT_OBJECTS, "plugins/trt/dk_trt/calibrator.py", "plugins/trt/dk_trt/doctor.py",
               "plugins/trt/dk_trt/versions.py", "plugins/torch2trt/dk_torch2trt/export.py"]
#: Calls on TensorRT objects that are dk's own, not TensorRT's (the TrtEngine's execute in profile.py).
DK_METHODS = {"execute"}


def names(version: str) -> set[str]:
    lines = (DATA / f"tensorrt-{version}.txt").read_text().splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def present(name: str, table: set[str]) -> bool:
    """In the table, or the tail of a longer string there (the linker merges tails)."""
    return name in table or any(entry.endswith(name) for entry in table)


def _chain(node: ast.AST) -> list[str]:
    out = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    out.append(node.id if isinstance(node, ast.Name) else "")
    return out[::-1]


def used_names(module: str) -> dict[str, set[str]]:
    """``{"trt": {...}, "objects": {...}, "overrides": {...}}`` of one module's source."""
    tree = ast.parse((ROOT / module).read_text())
    trt_names, objects, overrides = set(), set(), set()
    variables = TRT_OBJECTS.get(module, set())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "_parent", None), ast.Attribute):
            chain = _chain(node)
            if chain[0] == "trt":
                trt_names.update(chain[1:])
            elif variables and len(chain) == 2 and chain[0] in variables:
                objects.add(chain[1])
            elif len(chain) == 3 and chain[1] in TRT_ATTRIBUTES:
                objects.add(chain[2])
        for child in ast.iter_child_nodes(node):
            child._parent = node  # type: ignore[attr-defined]
        if isinstance(node, ast.ClassDef) and any(_chain(b)[0] == "trt" for b in node.bases):
            overrides.update(f.name for f in node.body if isinstance(f, ast.FunctionDef) and f.name != "__init__")
    return {"trt": trt_names, "objects": objects - DK_METHODS, "overrides": overrides}


def all_used(modules) -> set[str]:
    out: set[str] = set()
    for module in modules:
        for group in used_names(module).values():
            out |= group
    return out


#: Names the string table misses although the release has them, each with the source line that shows
#: it: the compiler built these short literals in code instead of storing them. Python overrides are
#: looked up by name from C++ (utils::getOverride), so only the pybind11 source can tell.
SOURCE_ONLY = {
    "10.13.3.9": {
        "reallocate_output": "NVIDIA/TensorRT release/10.13.3 94e2b9ef python/src/infer/pyCore.cpp:610 "
                             'getOverride(..., "reallocate_output")',
        "reallocate_output_async": "same file:648 getOverride(..., \"reallocate_output_async\", false)",
    },
}

TRT_PLUGIN = [m for m in TRT_MODULES if "/dk_trt/" in m]
TORCH2TRT_PLUGIN = [m for m in TRT_MODULES if "/dk_torch2trt/" in m]
#: Names set through getattr: the precision flags of 10.x and the profiling verbosities.
DYNAMIC_10 = {f for p in ("fp32", "fp16", "int8") for f in precision_flags(p)}
DYNAMIC = {v.upper() for v in PROFILING_VERBOSITIES}


def test_the_name_lists_are_the_wheels_and_hold_the_core_api():
    for version in (*TEN, *ELEVEN):
        header = (DATA / f"tensorrt-{version}.txt").read_text().splitlines()[:2]
        assert header[0].startswith(f"# tensorrt-cu12-bindings=={version}: ") and header[1].startswith("# sha256 ")
        table = names(version)
        assert {"IBuilderConfig", "execute_async_v3", "set_input_shape", "nptype"} <= table, version
        assert present("Builder", table)  # stored only as the tail of IBuilder in some releases


def test_the_source_reader_finds_what_the_plugins_use():
    used = all_used(TRT_PLUGIN)
    assert {"BuilderFlag", "TF32", "GPU_FALLBACK", "IOutputAllocator", "clear_flag", "can_run_on_DLA",
            "set_output_allocator", "set_tensor_address", "DLA_core", "combine", "reallocate_output",
            "notify_shape", "get_batch"} <= used
    assert {"DeviceType", "DLA", "Logger", "serialize"} <= all_used(TORCH2TRT_PLUGIN)


@pytest.mark.parametrize("version", TEN)
def test_every_name_the_trt_plugin_uses_exists_in_tensorrt_10(version):
    table = names(version)
    missing = sorted(n for n in all_used(TRT_PLUGIN) | DYNAMIC | DYNAMIC_10 if not present(n, table))
    assert set(missing) <= set(SOURCE_ONLY.get(version, {})), f"TensorRT {version} has no {missing}"


@pytest.mark.parametrize("version", ELEVEN)
def test_every_name_the_trt_plugin_uses_on_11_exists_there(version):
    """Names absent in 11 must be the 10.x-only ones (calibrators, BuilderFlag.FP16/INT8): the code
    reaches them only on the 10.x path (dk_trt.export.check_path, PrecisionPath.strongly_typed)."""
    table = names(version)
    missing = sorted(n for n in all_used(TRT_PLUGIN) | DYNAMIC if not present(n, table))
    assert set(missing) <= set(REMOVED_IN_11), f"TensorRT {version} lacks {sorted(set(missing) - set(REMOVED_IN_11))}"


@pytest.mark.parametrize("version", TEN)
def test_every_name_the_torch2trt_plugin_uses_exists_in_tensorrt_10(version):
    table = names(version)
    assert sorted(n for n in all_used(TORCH2TRT_PLUGIN) if not present(n, table)) == []


def test_names_removed_in_11_are_in_every_10_and_in_no_11():
    for name in REMOVED_IN_11:
        assert all(present(name, names(v)) for v in TEN), name
        assert not any(present(name, names(v)) for v in ELEVEN), name
    for name in DYNAMIC_10:  # BuilderFlag.FP16 is gone in 11 (INT8 lives on as the tail of UINT8)
        assert all(present(name, names(v)) for v in TEN), name
    assert not any(present("FP16", names(v)) for v in ELEVEN)
    assert set(TORCH2TRT_NEEDS) <= set(REMOVED_IN_11)


def test_apis_dk_relies_on_in_both_majors():
    for version in (*TEN, *ELEVEN):
        table = names(version)
        for name in ("STRONGLY_TYPED", "TF32", "DLA_core", "default_device_type", "GPU_FALLBACK", "IOutputAllocator",
                     "set_output_allocator", "notify_shape", "set_timing_cache", "create_timing_cache",
                     "get_timing_cache", "can_run_on_DLA", "num_DLA_cores", "set_memory_pool_limit"):
            assert name in table, f"{name} in {version}"


def test_the_script_reproduces_the_committed_lists(tmp_path):
    """Re-extracts every list from the wheels in $DK_TRT_WHEELS (pip downloads missing ones there, which
    needs the network) and compares them with the committed files."""
    import os
    import subprocess
    import sys

    wheels = os.environ.get("DK_TRT_WHEELS")
    if not wheels:
        pytest.skip("set DK_TRT_WHEELS=/some/folder: the wheels are read (or pip-downloaded, needs the network) there")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/trt_api_surface.py"), "--wheels", wheels,
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"could not get the wheels (network?): {proc.stderr.strip().splitlines()[-1:]}")
    for version in (*TEN, *ELEVEN):
        name = f"tensorrt-{version}.txt"
        assert (tmp_path / name).read_text() == (DATA / name).read_text(), name
