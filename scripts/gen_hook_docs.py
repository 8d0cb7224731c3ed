"""Write docs/hooks.md from the hookspec docstrings in core/dk/hookspecs.py.

    python scripts/gen_hook_docs.py          # rewrite docs/hooks.md
    python scripts/gen_hook_docs.py --check  # exit 1 if docs/hooks.md is out of date (used by the tests)
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from dk import hookspecs

OUT = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


def render() -> str:
    lines = [
        "# Hook reference",
        "",
        "Generated from `core/dk/hookspecs.py` by `scripts/gen_hook_docs.py`; do not edit by hand.",
        "",
        inspect.cleandoc(hookspecs.__doc__ or ""),
        "",
    ]
    members = inspect.getmembers(hookspecs, inspect.isfunction)
    for name, func in sorted(members, key=lambda m: m[1].__code__.co_firstlineno):
        if not name.startswith("dk_"):
            continue
        opts = getattr(func, "dk_spec", {})
        signature = str(inspect.signature(func)).replace("'", "")
        lines += [f"## `{name}{signature}`", ""]
        if opts.get("firstresult"):
            lines += ["*firstresult: the first non-None result is used.*", ""]
        lines += [inspect.cleandoc(func.__doc__ or "(undocumented)"), ""]
    return "\n".join(lines)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python scripts/gen_hook_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
