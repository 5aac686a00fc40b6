"""Pictures of workflows: a Gantt chart of a run (or of planned tasks) and a Graphviz graph of a workflow.

``bars`` turns a run into bars, ``labels`` lays their labels out, ``gantt`` draws the chart and ``dot``
writes the graph. matplotlib is optional (``pip install 'pepper[charts]'``) and only imported when a chart
is drawn; ``workflow_dot`` needs nothing and returns DOT text for ``dot -Tpng``.

Implementation, not public API: use ``pepper`` and ``pepper.core``; names here may change without notice.
"""

from pepper.drawing.bars import (
    NO_AGENT,
    STATUS_COLORS,
    Bar,
    EarlierAttempt,
    ItemRun,
    run_bars,
    run_notes,
    run_title,
)
from pepper.drawing.dot import workflow_dot
from pepper.drawing.gantt import gantt_figure, write_gantt

__all__ = [
    "NO_AGENT",
    "STATUS_COLORS",
    "Bar",
    "EarlierAttempt",
    "ItemRun",
    "gantt_figure",
    "run_bars",
    "run_notes",
    "run_title",
    "workflow_dot",
    "write_gantt",
]
