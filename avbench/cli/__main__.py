"""``python -m avbench.cli``: the ``avbench`` command, run as ``python -m avbench`` runs it (Ctrl-C included;
started through runpy, so the command line imports nothing back from the package that starts it)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("avbench", run_name="__main__")
