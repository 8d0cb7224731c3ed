"""Extract the Python API surface of TensorRT releases from NVIDIA's ``tensorrt-cu12-bindings`` wheels.

Each wheel holds the real compiled module ``tensorrt_bindings/tensorrt.so`` (pybind11). Its string table
holds every name pybind11 registers (classes, methods, properties, enum members) as a NUL-terminated
string; the wheel's ``__init__.py`` adds pure-Python helpers (``nptype``, ``volume``). This script
downloads each wheel with ``pip download --no-deps``, reads both and writes one sorted name list per
version, headed by the wheel's name and sha256, to ``tests/plugins/trt/data/tensorrt-<version>.txt``::

    python scripts/trt_api_surface.py                 # every version in VERSIONS
    python scripts/trt_api_surface.py --wheels /tmp/w # reuse wheels already downloaded there

One trap (see /work/shared/TENSORRT-BINDINGS.md): the linker stores a string only once, so a short
name can live only as the tail of a longer one (``INT8`` inside ``UINT8``). A name is "present" when
some listed string ends with it; absence is therefore strong evidence, presence of very short names
weak. C++ mangled symbols (``_Z...``) are left out: they are not Python names.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: The releases the trt and torch2trt plugins claim: the oldest and newest 10.x, a JetPack-era 10.x,
#: the first and the newest 11.x on PyPI (checked with ``pip index versions tensorrt-cu12-bindings``).
VERSIONS = ("10.0.1", "10.13.3.9", "10.16.1.11", "11.0.0.114", "11.4.0.106")
DISTRIBUTION = "tensorrt-cu12-bindings"
OUT = Path(__file__).resolve().parents[1] / "tests/plugins/trt/data"
_NAME = re.compile(rb"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)\x00")


def download(version: str, folder: Path) -> Path:
    """The wheel of ``version`` in ``folder`` (downloaded with pip when it is not there yet)."""
    pattern = f"tensorrt_cu12_bindings-{version}-*.whl"
    found = sorted(folder.glob(pattern))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                        f"{DISTRIBUTION}=={version}"], check=True)
        found = sorted(folder.glob(pattern))
    if not found:
        raise SystemExit(f"pip downloaded no wheel matching {pattern} into {folder}")
    return found[0]


def python_names(source: bytes) -> set[str]:
    """Top-level functions, classes and assigned names of the wheel's pure-Python ``__init__.py``."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def surface(wheel: Path) -> set[str]:
    """Every pybind11-registered string of the compiled module, plus the ``__init__.py`` names."""
    with zipfile.ZipFile(wheel) as zf:
        binary = zf.read("tensorrt_bindings/tensorrt.so")
        init = zf.read("tensorrt_bindings/__init__.py")
    names = {m.group(1).decode() for m in _NAME.finditer(binary)}
    return {n for n in names if not n.startswith("_Z")} | python_names(init)


def write_list(version: str, wheel: Path, out: Path) -> Path:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    target = out / f"tensorrt-{version}.txt"
    header = [
        f"# {DISTRIBUTION}=={version}: {wheel.name}",
        f"# sha256 {digest}",
        "# names of tensorrt_bindings/tensorrt.so's string table (NUL-terminated identifiers, no _Z symbols)",
        "# and top-level names of tensorrt_bindings/__init__.py; made by scripts/trt_api_surface.py",
    ]
    out.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n".join(header + sorted(surface(wheel))) + "\n")
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, help="folder with (or for) the downloaded wheels")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("versions", nargs="*", default=list(VERSIONS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.wheels or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for version in args.versions:
            print(write_list(version, download(version, folder), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
