"""dk: take a trained model to a deployment engine and prove that it works there.

The import is deliberately cheap: nothing here imports pluggy, numpy or any engine library.
Plugin authors use :data:`dk.hookimpl` (imported lazily from :mod:`dk.hooks`).
"""

__version__ = "0.1.0"


def __getattr__(name):  # lazy so that `import dk` stays fast for the CLI
    if name == "hookimpl":
        from dk.hooks import hookimpl

        return hookimpl
    raise AttributeError(f"module 'dk' has no attribute {name!r}")
