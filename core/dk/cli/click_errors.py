"""click's usage errors as one line in dk's error style: ``error: <problem>; see 'dk run --help'``."""

from __future__ import annotations

import click


def one_line(exc: click.ClickException) -> str:
    """``exc`` as one ``error:`` line (click's own would be three: usage, hint, message)."""
    text = " ".join(exc.format_message().split()).replace(" ,", ",").replace(". (", " (")
    text = text.rstrip(".").replace("(Did you mean", "(did you mean")
    if len(text) > 1 and text[0].isupper() and text[1].islower():  # "No such option" -> "no such option"
        text = text[0].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        text += f"; see '{ctx.command_path} --help'"
    return f"error: {text}"
