"""The pluggy markers of the `dk` project."""

import pluggy

PROJECT_NAME = "dk"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
