"""The ``avbench`` command line: a thin click wrapper, each command one library call.

One module per family of commands (issue 18): :mod:`~avbench.cli.run` (run, plan, run-unit, status),
:mod:`~avbench.cli.catalog` (models, protocols), :mod:`~avbench.cli.data` (data ...) and
:mod:`~avbench.cli.report` (report, reproduce, power, compare); what they share, the ``avbench`` group
included, is declared once in :mod:`~avbench.cli.common`.
"""

from avbench.cli.common import main, parse_sets, user_errors
from avbench.cli import catalog, data, report, run  # noqa: F401 -- each registers its commands on `main`
from avbench.cli.report import REPORT_DEFAULT_CORRECTION

__all__ = ["REPORT_DEFAULT_CORRECTION", "main", "parse_sets", "user_errors"]
