"""The torch plugin's ``-o`` options, in one place. Export and load accept each other's keys, as
one ``-o`` list reaches every stage of a run."""

from __future__ import annotations

from typing import Mapping

#: The source options (output_names, name, task: dk.plugin_options.SOURCE_OPTIONS) are known
#: to every plugin; these are the torch engine's own.
LOAD_OPTIONS = {
    "precision": "fp32 (default) or fp16 (needs --device cuda)",
    "threads": "torch's intra-op CPU threads (default: torch's choice)",
}


def check_options(options: Mapping[str, str]) -> None:
    from dk.plugin_options import refuse_unknown

    refuse_unknown("torch", options, LOAD_OPTIONS)
