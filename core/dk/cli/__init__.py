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
    try:
        cli.main(args=args, prog_name="dk", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # 'dk' alone: the help text, as click shows it
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:
        from dk.cli.click_errors import one_line

        click.echo(one_line(exc), err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("error: interrupted; nothing half-written was kept", err=True)
        return 130
    except Exception as exc:
        from dk.errors import DkError

        if debug:
            raise
        if isinstance(exc, DkError):
            click.echo(f"error: {exc}", err=True)
            return exc.exit_code
        click.echo(
            f"error: internal error {type(exc).__name__}: {exc} (run 'dk --debug ...' for the traceback)", err=True
        )
        return 1
    return 0
