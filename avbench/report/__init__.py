"""Paper-style reports (Tables 1-5, Figs. 3-8, robustness figures) built from a run's tidy results.

    from avbench.report import build_report
    report = build_report("runs/paper", out="runs/paper/report")   # never retrains
    print(report.index)                                            # runs/paper/report/index.md

See :mod:`avbench.report.build` for the layout of a report directory.
"""

from avbench.report.build import Report, Skipped, build_report
from avbench.report.render import Cell, Row, Section, Table, latex_escape
from avbench.report.rundata import RunData, load_run
from avbench.report.tables import DEFAULT_CORRECTION, Skip, StatsConfig

__all__ = ["DEFAULT_CORRECTION", "Cell", "Report", "Row", "RunData", "Section", "Skip", "Skipped", "StatsConfig",
           "Table", "build_report", "latex_escape", "load_run"]
