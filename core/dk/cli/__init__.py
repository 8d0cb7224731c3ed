"""The ``dk`` command line.

Only click is imported here: every command imports what it needs inside its function, so that
``dk --help`` loads no plugin and no heavy library.
"""

from __future__ import annotations

import os
import sys

import click

from dk import __version__
from dk.cli.compare import compare
from dk.cli.debug import debug
from dk.cli.doctor import doctor
from dk.cli.report import report
from dk.cli.run import run
from dk.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dk")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """dk: take a trained model to a deployment engine and prove that it works there.

    \b
    dk doctor                         which engines work here, and why not
    dk run all --plugin ort           export, quantize, compare and benchmark the default model
    dk run export --plugin ort        build an artifact (see 'dk run --help')
    dk compare --plugins torch,ort    same inputs through several engines, errors vs tolerance
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug or bool(os.environ.get("DK_DEBUG"))


cli.add_command(doctor)
cli.add_command(run)
cli.add_command(compare)
cli.add_command(serve)
cli.add_command(report)
cli.add_command(debug)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dk`` console script: one-line errors, exit codes, no tracebacks."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("DK_DEBUG"))
    report = _ErrorReport(as_json="--json" in args)
    try:
        cli.main(args=args, prog_name="dk", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # 'dk' alone: the help text, as click shows it
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:
        from dk.cli.click_errors import one_line

        return report(one_line(exc), exc.exit_code, "usage")
    except click.exceptions.Abort:
        return report("error: aborted", 130, "interrupted")
    except KeyboardInterrupt:
        return report("error: interrupted; nothing half-written was kept", 130, "interrupted")
    except Exception as exc:
        from dk.errors import DkError

        if debug:
            raise
        if isinstance(exc, DkError):
            return report(f"error: {exc}", exc.exit_code, type(exc).__name__, exc.result)
        return report(f"error: internal error {type(exc).__name__}: {exc} (run 'dk --debug ...' for the traceback)",
                      1, "internal")
    return 0


class _ErrorReport:
    """The error line on stderr and, with ``--json``, the JSON error document on stdout (unless the
    command already printed its document): ``{"error", "exit_code", "kind"[, "result"]}``."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        render = sys.modules.get("dk.cli.render")
        if render is not None:  # main() called again in one process
            render.json_printed = False

    def __call__(self, line: str, exit_code: int, kind: str, result: dict | None = None) -> int:
        click.echo(line, err=True)
        render = sys.modules.get("dk.cli.render")
        if self.as_json and not getattr(render, "json_printed", False):
            import json

            document = {"error": line.removeprefix("error: "), "exit_code": exit_code, "kind": kind}
            if result is not None:
                document["result"] = result
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        return exit_code
