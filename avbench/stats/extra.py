"""The optional extra ``avbench[stats]``: the libraries the ranking and Bayesian signed-rank tests stand on.

scikit-posthocs (Nemenyi and pairwise Wilcoxon tests, the critical-difference diagram) and baycomp (the
Bayesian signed-rank test of Benavoli et al. 2017) are not needed by anything else, so a plain install
works without them; what needs them imports them through :func:`require`, whose error names the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRA = "stats"
INSTALL = f"pip install 'avbench[{EXTRA}]'"


class MissingExtra(ImportError):
    """A feature needs the optional extra ``avbench[stats]``; the message says which and how to install it."""


def require(module: str, feature: str) -> ModuleType:
    """Imports ``module`` for ``feature``, or raises :class:`MissingExtra` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{feature} needs the optional extra avbench[{EXTRA}] ({module} is not installed): "
                           f"{INSTALL}") from None
