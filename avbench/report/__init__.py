"""Paper-style reports (Tables 1-5, Figs. 3-8, robustness figures) built from a run's tidy results.

    from avbench.report import build_report
    report = build_report("runs/paper", out="runs/paper/report")   # never retrains
    print(report.index)                                            # runs/paper/report/index.md

See :mod:`avbench.report.build` for the layout of a report directory, and
:mod:`avbench.report.artifacts` to add a table or figure of your own (``@artifact``).
"""

from avbench.report.artifacts import (ARTIFACTS, DEFAULT_CORRECTION, Artifact, ReportContext, Skip, StatsConfig,
                                      artifact, artifact_family, unregister)
from avbench.report.build import Failed, Report, Skipped, build_report
from avbench.report.figures import FigureResult
from avbench.report.render import Cell, Row, Section, Table, latex_escape
from avbench.report.rundata import RunData, load_run

__all__ = ["ARTIFACTS", "DEFAULT_CORRECTION", "Artifact", "Cell", "Failed", "FigureResult", "Report", "ReportContext",
           "Row", "RunData", "Section", "Skip", "Skipped", "StatsConfig", "Table", "artifact", "artifact_family",
           "build_report", "latex_escape", "load_run", "unregister"]
