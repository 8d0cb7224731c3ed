"""``dk report RESULTS.json -o report.html|.md``: plots and tables from a benchmark result."""

from __future__ import annotations

import click


@click.command()
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False),
              help="report.html (self-contained, figures embedded) or report.md (PNG files beside it).")
@click.option("--json", "as_json", is_flag=True, help="Print the written files as one JSON document.")
def report(results: str, output: str, as_json: bool) -> None:
    """Write a report of a 'dk run bench --output RESULTS.json' document, or the sensitivity chart of
    a 'dk debug layers --json > LAYERS.json' document.

    \b
    dk report results.json -o report.html
    dk report results.json -o report.md      (writes report-latency.png ... beside it)
    dk report layers.json -o layers.html     (per-layer int8 sensitivity, most sensitive first)
    """
    from dk.cli import render
    from dk.debug.sensitivity import LAYERS_SCHEMA
    from dk.report import check_output_path, load_report_document, write_report
    from dk.report.sensitivity import write_sensitivity_report

    from dk.cli.output_paths import check_output_file

    check_output_path(output)
    check_output_file(output, "-o", "report.html")
    document = load_report_document(results)
    write = write_sensitivity_report if document["schema"] == LAYERS_SCHEMA else write_report
    with render.step(f"writing {output}", as_json):
        written = write(document, output)
    if as_json:
        render.print_json({"report": str(written[0]), "files": [str(p) for p in written]})
    else:
        render.note(f"wrote {', '.join(str(p) for p in written)}")
