"""Pictures of workflows: a Gantt chart of a run (or of planned tasks) and a Graphviz graph of a workflow.

matplotlib is optional (``pip install 'pepper[charts]'``) and only imported when a chart is drawn;
``workflow_dot`` needs nothing and returns DOT text for ``dot -Tpng``.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepper.errors import ConfigError
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import WorkflowResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "NO_AGENT",
    "STATUS_COLORS",
    "Bar",
    "gantt_figure",
    "run_bars",
    "run_notes",
    "run_title",
    "workflow_dot",
    "write_gantt",
]

#: The row of a bar whose step ran on no known agent.
NO_AGENT = "(no agent)"

#: Fill colour of each status, in legend order (shared by the chart and the DOT graph).
STATUS_COLORS: dict[str, str] = {
    "completed": "#2e9d4b",
    "failed": "#d62728",
    "cancelled": "#8c8c8c",
    "in_progress": "#1f77b4",
    "pending": "#f0a830",
    "blocked": "#c98a5b",
    "waiting": "#d9d9d9",
    "skipped": "#e7d36b",
    "planned": "#b9a3e3",
}
_OTHER_COLOR = "#9467bd"
_HATCH = {"failed": "///", "cancelled": "..", "planned": ""}
_DPI = 120
_CHARTS_MISSING = "drawing charts needs matplotlib: pip install 'pepper[charts]'"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a Gantt chart: a step (or planned task) on a row (its agent)."""

    label: str  # step id
    row: str  # agent id (NO_AGENT when none)
    start: float  # seconds from the chart's origin
    end: float
    status: str  # completed / failed / cancelled / skipped / in_progress / planned ...
    dependencies: tuple[str, ...] = ()


# -- runs as bars -----------------------------------------------------------------------------------


def run_bars(result: WorkflowResult, now: float | None = None) -> list[Bar]:
    """One bar per step that started, in the run's step order, timed from the earliest start (or the
    run's creation); a step still running ends at ``now`` (default: the current time). Steps that never
    started are left out: see ``run_notes``."""
    origin = result.started_at
    if origin is None:
        origin = result.created_at
    if now is None:
        now = time.time()
    bars = []
    for step in result.steps.values():
        if step.started_at is None:
            continue
        end = step.finished_at
        if end is None:
            end = result.finished_at if result.status.is_final and result.finished_at is not None else now
        start = step.started_at - origin
        bars.append(
            Bar(step.step_id, step.agent_id or NO_AGENT, start, max(start, end - origin), step.status,
                tuple(step.dependencies))
        )  # fmt: skip
    return bars


def run_notes(result: WorkflowResult) -> list[str]:
    """Lines naming the steps ``run_bars`` leaves out: ``skipped: a, b`` and ``never started: c (cancelled)``
    (``not started yet`` while the run is running)."""
    skipped = [s.step_id for s in result.steps.values() if s.started_at is None and s.status == "skipped"]
    other = [
        f"{s.step_id} ({s.status})" for s in result.steps.values() if s.started_at is None and s.status != "skipped"
    ]
    notes = []
    if skipped:
        notes.append("skipped: " + ", ".join(skipped))
    if other:
        notes.append(("never started: " if result.status.is_final else "not started yet: ") + ", ".join(other))
    return notes


def run_title(result: WorkflowResult) -> str:
    """``workflow - run <id> - <status>`` with the run's duration once it ended."""
    title = f"{result.workflow} - run {result.run_id} - {result.status}"
    if result.duration is not None:
        title += f" in {_seconds(result.duration)}"
    return title


def _color(status: str) -> str:
    return STATUS_COLORS.get(status, _OTHER_COLOR)


def _is_dark(color: str) -> bool:
    """Whether white text reads better than black on ``color`` (``#rrggbb``)."""
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.6


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


# -- the Gantt chart --------------------------------------------------------------------------------


def gantt_figure(bars: Sequence[Bar], title: str, *, notes: Sequence[str] = ()) -> Figure:
    """A Gantt chart of ``bars``: one row per agent (sorted), bars coloured by status with a legend, an arrow from
    each dependency's bar to its dependent's, and ``notes`` under it. Each bar's rectangle has the gid
    ``bar:<label>`` and each arrow ``arrow:<dependency>-><label>``. Raises ``ConfigError`` without
    matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigError(_CHARTS_MISSING) from None

    rows = sorted({b.row for b in bars}, key=lambda row: (row == NO_AGENT, row))  # steps with no agent last
    lanes = _lanes(bars)
    lane_count = dict.fromkeys(rows, 1)
    for bar, lane in zip(bars, lanes, strict=True):
        lane_count[bar.row] = max(lane_count[bar.row], lane + 1)
    tops: dict[str, float] = {}
    y = 0.0
    for row in rows:
        tops[row] = y
        y += lane_count[row]
    total_lanes = max(1.0, y)

    busiest = max(Counter(b.row for b in bars).values(), default=0)
    width = min(20.0, 10.0 + 0.25 * max(0, busiest - 8))
    note_lines = [piece for note in notes for piece in (textwrap.wrap(note, int(width * 13)) or [""])]
    notes_height = 0.22 * len(note_lines) + (0.2 if note_lines else 0.0)
    plot_height = max(1.6, 0.42 * total_lanes) + 1.3
    height = plot_height + notes_height

    fig = Figure(figsize=(width, height), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    for i, line in enumerate(note_lines):
        fig.text(0.01, (notes_height - 0.1 - 0.22 * i) / height, line, fontsize=9, va="top", ha="left")
    layout_rect = (0.0, notes_height / height, 1.0, 1.0)

    if not bars:
        ax.text(0.5, 0.5, "no step started", transform=ax.transAxes, ha="center", va="center", fontsize=12,
                color="#555555")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout(rect=layout_rect)
        return fig

    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

    x0 = min(0.0, min(b.start for b in bars))
    x1 = max(b.end for b in bars)
    span = (x1 - x0) or 1.0
    ax.set_xlim(x0 - 0.01 * span, x1 + 0.02 * span)
    ax.set_ylim(total_lanes, 0)  # first row on top
    for i, row in enumerate(rows):
        if i % 2:
            ax.axhspan(tops[row], tops[row] + lane_count[row], color="#f4f4f4", zorder=0, lw=0)
    ax.set_yticks([tops[row] + lane_count[row] / 2 for row in rows], rows)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("seconds from start")
    ax.grid(axis="x", color="#e0e0e0", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    height_of_bar = 0.7
    centres: dict[str, float] = {}
    by_label: dict[str, Bar] = {}
    texts = []
    for i, bar in enumerate(bars):
        centre = tops[bar.row] + lanes[i] + 0.5
        centres[bar.label] = centre
        by_label[bar.label] = bar
        color = _color(bar.status)
        planned = bar.status == "planned"
        ax.add_patch(
            Rectangle(
                (bar.start, centre - height_of_bar / 2), max(bar.end - bar.start, span * 0.002), height_of_bar,
                facecolor=color, edgecolor="#5a3e99" if planned else "#333333", linewidth=0.8,
                linestyle="--" if planned else "-", hatch=_HATCH.get(bar.status, ""), gid=f"bar:{bar.label}",
                zorder=2,
            )
        )  # fmt: skip
        texts.append(ax.text(bar.start, centre, bar.label, fontsize=8, va="center", zorder=4))

    for bar in bars:
        for dep in bar.dependencies:
            if dep not in centres:
                continue
            source = by_label[dep]
            ax.add_patch(
                FancyArrowPatch(
                    (source.end, centres[dep]), (bar.start, centres[bar.label]), arrowstyle="-|>",
                    mutation_scale=8, color="#6b6b6b", alpha=0.55, linewidth=0.8, shrinkA=0, shrinkB=0,
                    connectionstyle="arc3,rad=0.0" if centres[dep] == centres[bar.label] else "arc3,rad=-0.15",
                    gid=f"arrow:{dep}->{bar.label}", zorder=1.5,
                )
            )  # fmt: skip

    present = {b.status for b in bars}
    legend = [s for s in STATUS_COLORS if s in present] + sorted(present - STATUS_COLORS.keys())
    ax.legend(
        handles=[
            Patch(facecolor=_color(s), edgecolor="#333333", hatch=_HATCH.get(s, ""),
                  label=s.replace("_", " "))
            for s in legend
        ],
        loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False, fontsize=9,
    )  # fmt: skip

    renderer = canvas.get_renderer()
    widths = [t.get_window_extent(renderer).width for t in texts]
    for text in texts:  # placed once the layout is known
        text.set_visible(False)
    fig.tight_layout(rect=layout_rect)
    for text in texts:
        text.set_visible(True)
    _place_labels(ax, renderer, bars, texts, widths)
    fig.tight_layout(rect=layout_rect)
    return fig


def _lanes(bars: Sequence[Bar]) -> list[int]:
    """The lane of each bar within its row, so that bars of one row that overlap in time do not hide
    each other."""
    lanes = [0] * len(bars)
    ends: dict[str, list[float]] = {}
    for i in sorted(range(len(bars)), key=lambda i: (bars[i].row, bars[i].start, bars[i].end, bars[i].label)):
        bar = bars[i]
        row_ends = ends.setdefault(bar.row, [])
        lane = next((n for n, end in enumerate(row_ends) if end <= bar.start), len(row_ends))
        if lane == len(row_ends):
            row_ends.append(bar.end)
        row_ends[lane] = max(bar.end, bar.start + 1e-9)
        lanes[i] = lane
    return lanes


def _place_labels(ax: Any, renderer: Any, bars: Sequence[Bar], texts: Sequence[Any], widths: Sequence[float]) -> None:
    """Put each label inside its bar when it fits, else just after it, widening the x axis to keep
    labels after the last bars on the chart."""
    for _ in range(4):
        left, right = ax.get_xlim()
        per_unit = ax.get_window_extent(renderer).width / ((right - left) or 1.0)
        pad = 4 / per_unit
        needed = right
        for bar, text, width in zip(bars, texts, widths, strict=True):
            if (bar.end - bar.start) * per_unit >= width + 8:
                dark = _is_dark(_color(bar.status))
                text.set(x=(bar.start + bar.end) / 2, ha="center", color="white" if dark else "black")
            else:
                text.set(x=bar.end + pad, ha="left", color="black")
                needed = max(needed, bar.end + pad + (width + 4) / per_unit)
        if needed <= right:
            return
        ax.set_xlim(left, needed)


def write_gantt(bars: Sequence[Bar], path: str | Path, title: str, *, notes: Sequence[str] = ()) -> Path:
    """Draw ``gantt_figure(bars, title, notes=notes)`` into the PNG file ``path`` (its folder is created)
    and return the path."""
    path = Path(path)
    figure = gantt_figure(bars, title, notes=notes)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=_DPI)
    return path


# -- the DOT graph ----------------------------------------------------------------------------------


def workflow_dot(spec: WorkflowSpec, result: WorkflowResult | None = None) -> str:
    """Graphviz DOT text of ``spec``, left to right: a node per step (id, task type, pinned agent,
    condition) and an edge from each dependency to its dependent; with ``result`` each node is filled
    with its step's status colour and names the status."""
    lines = [
        f"digraph {_quote(spec.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="white", fontname="Helvetica", fontsize=11];',
        '  edge [color="#555555"];',
    ]
    for step in spec.steps:
        label = [step.step_id, step.task_type]
        if step.agent:
            label.append(f"@{step.agent}")
        if step.condition is not None:
            label.append(f"when: {step.condition}")
        elif step.condition_fn is not None:
            label.append("when: (Python condition)")
        attributes = {"label": "\n".join(label)}
        style = ["rounded", "filled"] + (["dashed"] if step.conditional else [])
        if result is not None and step.step_id in result.steps:
            status = result.steps[step.step_id].status
            attributes["label"] += f"\n[{status}]"
            attributes["fillcolor"] = _color(status)
            attributes["fontcolor"] = "white" if _is_dark(_color(status)) else "black"
        attributes["style"] = ",".join(style)
        lines.append(f"  {_quote(step.step_id)} [{_attributes(attributes)}];")
    for step in spec.steps:
        for dep in step.dependencies:
            lines.append(f"  {_quote(dep)} -> {_quote(step.step_id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _attributes(attributes: dict[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attributes.items())


def _quote(text: str) -> str:
    """``text`` as a DOT quoted string whose label shows it as is (newlines as line breaks)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r\n", "\n").replace("\r", "\n")
    return '"' + escaped.replace("\n", "\\n") + '"'
