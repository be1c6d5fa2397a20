"""The ``avbench`` command (and ``python -m avbench``): Ctrl-C works from its first second.

A process started with SIGINT ignored (a background job of a script, some launchers) inherits
that, and Python then never raises KeyboardInterrupt: the default handler is installed here
before anything else, and an interrupt while the command line is still being imported ends
the command with status 130 like one during the run (:func:`avbench.cli.user_errors`).
"""

import os
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # numpy first, inside this guard: some libraries import it under a bare ``except``, which swallows an
        # interrupt that strikes mid-import and leaves numpy half-initialised (seen: 'module numpy has no
        # attribute nonzero' instead of status 130, 1 start in 4 at 0.3 s)
        import numpy  # noqa: F401
        from avbench.cli import main as cli
    except KeyboardInterrupt:
        print("\nInterrupted. Nothing was written.", file=sys.stderr)
        _interrupted()
    try:
        cli()
    except SystemExit as exc:
        if exc.code == 130:
            _interrupted()
        raise


def _interrupted() -> None:
    """Ends with status 130.  Not through SystemExit: a KeyboardInterrupt that struck while a
    module was being imported makes the interpreter end itself by SIGINT at exit, even though
    avbench handled it, and the shell would see a signal instead of the status."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    main()
