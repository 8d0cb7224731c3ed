"""Benchmark reports from a ``dk.bench/1`` result document: self-contained HTML (figures embedded
as base64 PNG) or Markdown (figures as PNG files beside it).

    from dk.report import write_report
    write_report(document, "report.html")
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from dk.errors import UsageError

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td{text-align:right}td:first-child,td.text{text-align:left}img{max-width:100%}"""
_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s*(x|%|ms|s)?|-")


def write_report(document: dict[str, Any], path: str | Path) -> list[Path]:
    """Write the report for ``document`` to ``path`` (``.html`` or ``.md``); returns the files written."""
    from dk.bench.results import write_text_atomic
    from dk.report.content import model_title, sections
    from dk.report.plots import all_figures

    target = check_output_path(path)
    suffix = target.suffix.lower()
    figures = all_figures(document)
    parts = sections(document, figures)
    title = f"dk benchmark report: {model_title(document.get('model') or {})}"
    if suffix == ".md":
        written = []
        names = {}
        for name, png in figures.items():
            png_path = target.with_name(f"{target.stem}-{name}.png")
            written.append(_write_bytes(png_path, png))
            names[name] = png_path.name
        written.insert(0, write_text_atomic(target, to_markdown(title, parts, names)))
        return written
    embedded = {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in figures.items()}
    return [write_text_atomic(target, to_html(title, parts, embedded))]


def load_report_document(path: str | Path) -> dict[str, Any]:
    """A ``dk.bench/1`` result or a ``dk debug layers --json`` document (schema checked); one-line
    :class:`dk.errors.DkError` otherwise."""
    from dk.bench import results as result_files
    from dk.debug.sensitivity import LAYERS_SCHEMA

    document = result_files.load(path, also_accept=(LAYERS_SCHEMA,))
    if document["schema"] == LAYERS_SCHEMA and not isinstance(document.get("layers"), list):
        raise UsageError(f"{path}: a {LAYERS_SCHEMA} document needs a 'layers' list; "
                         "write it with 'dk debug layers --json > FILE'")
    return document


def check_output_path(path: str | Path, flag: str = "-o") -> Path:
    """``path`` if it ends in .html or .md, else a one-line :class:`UsageError` naming ``flag``."""
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm", ".md"):
        raise UsageError(f"{flag} {path}: the report must end in .html or .md")
    return target


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def to_markdown(title: str, parts: list, images: dict[str, str]) -> str:
    lines = [f"# {title}", ""]
    for part in parts:
        lines += [f"## {part.title}", ""]
        if part.text:
            lines += [part.text, ""]
        if part.figure and part.figure in images:
            lines += [f"![{part.title}]({images[part.figure]})", ""]
        if part.rows:
            lines.append("| " + " | ".join(h or " " for h in part.headers) + " |")
            lines.append("|" + "|".join(" --- " for _ in part.headers) + "|")
            for row in part.rows:
                lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
            lines.append("")
    return "\n".join(lines)


def _cell(text: str, facts: bool = False) -> str:
    """A table cell: numbers right-aligned (the stylesheet's default), text and the values of a
    name/value table left-aligned."""
    numeric = not facts and _NUMBER.fullmatch(text.strip()) is not None
    return f"<td>{html.escape(text)}</td>" if numeric else f'<td class="text">{html.escape(text)}</td>'


def to_html(title: str, parts: list, images: dict[str, str]) -> str:
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>"]
    for part in parts:
        body.append(f"<h2>{esc(part.title)}</h2>")
        if part.text:
            body.append(f"<p>{esc(part.text)}</p>")
        if part.figure and part.figure in images:
            body.append(f'<img alt="{esc(part.title)}" src="{images[part.figure]}">')
        if part.rows:
            head = "".join(f"<th>{esc(h)}</th>" for h in part.headers)
            rows = "".join("<tr>" + "".join(_cell(str(c), part.facts) for c in row) + "</tr>" for row in part.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
