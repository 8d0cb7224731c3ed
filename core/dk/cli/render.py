"""Rich tables for humans and one JSON document for machines; progress goes to stderr."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Iterator

from rich.console import Console
from rich.table import Table

# Tables are wide; when stdout is a pipe or file, do not squeeze them into 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

STATUS_STYLE = {"ok": "green", "missing-dependency": "yellow", "no-device": "yellow"}


#: Set once a JSON document went to stdout: an error after it adds no second document.
json_printed = False


def print_json(data: Any) -> None:
    global json_printed
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    json_printed = True


@contextlib.contextmanager
def step(message: str, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr while a long step runs (silent when stderr is not a terminal)."""
    if quiet or not err.is_terminal:
        yield
        return
    with err.status(message):
        yield


def note(message: str) -> None:
    err.print(message, highlight=False)


def doctor_table(report: dict) -> None:
    """The plugin table, then why each unavailable plugin is not usable, each reason on one line
    printed whole: a reason holds install commands and URLs, which a table cell would cut or fold."""
    table = Table(title=f"dk {report['dk']} on {report['platform']}, Python {report['python']}")
    for column in ("plugin", "status", "version", "kind", "formats", "precisions", "devices", "notes"):
        table.add_column(column, overflow="fold")  # never "…": a long word breaks onto the next line
    for p in report["plugins"]:
        style = STATUS_STYLE.get(p["status"], "red")
        formats = ""
        if p.get("formats_in") or p.get("formats_out"):
            formats = f"{', '.join(p.get('formats_in', []))} -> {', '.join(p.get('formats_out', []))}"
        table.add_row(
            p["name"], f"[{style}]{p['status']}[/]", p["version"], p.get("kind", ""), formats,
            ",".join(p.get("precisions", [])), ", ".join(p.get("devices", [])), _doctor_notes(p, report["probe"]),
        )
    out.print(table)
    _print_reasons(report["plugins"])
    if cpu := report.get("cpu"):
        vnni = "with VNNI" if cpu["vnni"] else "no VNNI: int8 weights use 7 bits (reduce_range) by default"
        out.print(f"CPU {cpu['model']}: int8 path {cpu['int8_isa']} ({vnni}); flags {' '.join(cpu['flags']) or '-'}",
                  highlight=False)


def _doctor_notes(plugin: dict, probe: bool) -> str:
    """The notes cell: library versions (and, with --probe, details); a pointer to the reason below."""
    notes = "why: see below" if plugin.get("error") else ", ".join(
        f"{k} {v}" for k, v in plugin.get("versions", {}).items())
    if probe and plugin.get("details"):
        notes = (notes + "; " if notes else "") + ", ".join(f"{k}: {v}" for k, v in plugin["details"].items())
    return notes


def _print_reasons(plugins: list[dict]) -> None:
    """``name (status): reason`` for each plugin that gave one, unwrapped (the terminal wraps it,
    so a URL or command copies whole) and without markup (a reason may hold ``[...]``)."""
    for p in plugins:
        if p.get("error"):
            out.print(f"{p['name']} ({p['status']}): {p['error']}", soft_wrap=True, highlight=False, markup=False)


def artifact_summary(title: str, artifact: dict) -> None:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("artifact", artifact["path"] + ("  (cached, reused)" if artifact.get("reused") else ""))
    table.add_row("format / precision", f"{artifact['format']} / {artifact['precision']}")
    table.add_row("files", ", ".join(f"{f['name']} ({f['size'] / 1024:.1f} KiB)" for f in artifact["files"]))
    for key in ("inputs", "outputs"):
        table.add_row(key, "; ".join(f"{s['name']} {s['shape']} {s['dtype']}" for s in artifact[key]))
    for line in artifact.get("extra", {}).get("notes", []):
        table.add_row("note", line)
    out.print(table)


def rows_table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """A table of ``rows`` (dicts) showing ``columns`` as (key, header); floats get 3 significant digits."""
    table = Table(title=title, min_width=len(title) + 2)  # a narrow table would wrap its title
    for _, header in columns:
        table.add_column(header, justify="right" if header not in ("engine", "output", "plugin") else "left")
    for row in rows:
        table.add_row(*(_fmt(row.get(key), key) for key, _ in columns))
    out.print(table)


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    if key == "cosine" and isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, bool):
        return "[green]yes[/]" if value else "[red]NO[/]"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 0.01:
            return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
        return f"{value:.2e}"
    return str(value)
