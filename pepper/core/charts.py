"""Pictures of workflows: a Gantt chart of a run (or of planned tasks) and a Graphviz graph of a workflow.

matplotlib is optional (``pip install 'pepper[charts]'``) and only imported when a chart is drawn;
``workflow_dot`` needs nothing and returns DOT text for ``dot -Tpng``.
"""

from __future__ import annotations

import textwrap
import time
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepper.errors import ConfigError
from pepper.model import codec
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import WorkflowResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pepper.core.runtime import Runtime

__all__ = [
    "NO_AGENT",
    "STATUS_COLORS",
    "Bar",
    "EarlierAttempt",
    "agent_capacities",
    "earlier_attempts",
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
    "interrupted": "#b0b0b0",
}
_OTHER_COLOR = "#9467bd"
_HATCH = {"failed": "///", "cancelled": "..", "planned": "", "interrupted": "xx"}
_DPI = 120
_CROSS = "\u00d7"  # marks the label of a failed earlier attempt
_CHARTS_MISSING = "drawing charts needs matplotlib: pip install 'pepper[charts]'"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a Gantt chart: a step (or planned task) on a row (its agent)."""

    label: str  # step id
    row: str  # agent id (NO_AGENT when none)
    start: float  # seconds from the chart's origin
    end: float
    status: str  # completed / failed / cancelled / skipped / in_progress / planned / interrupted ...
    dependencies: tuple[str, ...] = ()
    #: The attempt number of an earlier attempt of the step (None for its last attempt, or a planned task).
    attempt: int | None = None

    @property
    def text(self) -> str:
        """What the bar says: the step id; an earlier attempt adds its number, a failed one a cross."""
        if self.attempt is None:
            return self.label
        return f"{_CROSS + ' ' if self.status == 'failed' else ''}{self.label} #{self.attempt}"

    @property
    def gid(self) -> str:
        return f"bar:{self.label}" if self.attempt is None else f"bar:{self.label}#{self.attempt}"


@dataclass(frozen=True, slots=True)
class EarlierAttempt:
    """An attempt of a step before its last one, as the store's attempt history keeps it."""

    attempt: int
    agent_id: str | None
    started_at: float | None
    ended_at: float
    status: str  # "failed" (it was retried) or "interrupted" (its worker stopped or was lost)
    error: str = ""  # ``Type: the first line of the message``


def earlier_attempts(runtime: Runtime, result: WorkflowResult) -> dict[str, list[EarlierAttempt]]:
    """The earlier attempts of each step of ``result`` that ran more than once, first to last."""
    found: dict[str, list[EarlierAttempt]] = {}
    for step in result.steps.values():
        if step.attempts > 1 or (step.attempts == 1 and step.started_at is None):
            rows = runtime.store.attempts(step.task_id)
            found[step.step_id] = [
                EarlierAttempt(r["attempt"], r["agent_id"], r["started_at"], r["ended_at"],
                               "failed" if r["outcome"] == "retry" else "interrupted", _error_line(r["error"]))
                for r in rows
            ]  # fmt: skip
    return {step_id: attempts for step_id, attempts in found.items() if attempts}


def agent_capacities(runtime: Runtime) -> dict[str, int]:
    """The capacity of each agent known here: this process's, and those of the live workers."""
    capacities = {a.spec.agent_id: a.spec.capacity for a in runtime.store.workers.agents()}
    capacities.update({a.spec.agent_id: a.spec.capacity for a in runtime.agents()})
    return capacities


def _error_line(encoded: str | None) -> str:
    error = codec.decode(encoded) if encoded else None
    if not isinstance(error, dict):
        return ""
    lines = [line.strip() for line in str(error.get("message") or "").splitlines() if line.strip()]
    return f"{error.get('type', 'Error')}: {lines[0]}" if lines else str(error.get("type", "Error"))


# -- runs as bars -----------------------------------------------------------------------------------


def run_bars(
    result: WorkflowResult, now: float | None = None, earlier: Mapping[str, Sequence[EarlierAttempt]] | None = None
) -> list[Bar]:
    """A bar per attempt of each step that started, in the run's step order, timed from the earliest start
    (or the run's creation): the step's ``earlier`` attempts (see ``earlier_attempts``), then its last one; a
    step still running ends at ``now`` (default: the current time). Steps that never started are left out:
    see ``run_notes``."""
    origin = result.started_at
    if origin is None:
        origin = result.created_at
    starts = [a.started_at for attempts in (earlier or {}).values() for a in attempts if a.started_at is not None]
    origin = min([origin, *starts])  # a step's last attempt may not be its first
    if now is None:
        now = time.time()
    bars = []
    for step in result.steps.values():
        for past in (earlier or {}).get(step.step_id, ()):
            if past.started_at is not None:
                start = past.started_at - origin
                bars.append(Bar(step.step_id, past.agent_id or NO_AGENT, start, max(start, past.ended_at - origin),
                                past.status, attempt=past.attempt))  # fmt: skip
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


def gantt_figure(
    bars: Sequence[Bar], title: str, *, notes: Sequence[str] = (), capacities: Mapping[str, int] | None = None
) -> Figure:
    """A Gantt chart of ``bars``: one row per agent (sorted), bars coloured by status with a legend, an arrow from
    each dependency's (last) bar to its dependent's, and ``notes`` under it. Each bar's rectangle has the gid
    ``bar:<label>`` (``bar:<label>#<n>`` for an earlier attempt) and each arrow ``arrow:<dependency>-><label>``.
    Raises ``ConfigError`` without matplotlib.

    The row of an agent whose capacity is in ``capacities`` has at most that many lanes: attempts that
    overlapped more than that (its capacity changed since they ran) are drawn over each other, and a note
    says so.

    Arrows are straight and light, under the bars and labels. A label that does not fit in its bar is drawn
    after it, and the bar keeps its lane of the row up to the label's end, so that no label runs into
    another bar or label; bars that overlap in time (or a bar and the label before it) go to further
    lanes of the row. A row that would need more than ``_LANE_CAP`` lanes to show every label leaves out
    the labels that would collide (as few as it can) and a note ``not labelled (too short to show): ...``
    names their steps."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigError(_CHARTS_MISSING) from None

    busiest = max(Counter(b.row for b in bars).values(), default=0)
    width = min(20.0, 10.0 + 0.25 * max(0, busiest - 8))
    if not bars:
        return _empty_figure(title, notes, width)
    # Labels are laid out for the axes' width in pixels, known once the figure is laid out; in the rare case
    # the final layout leaves the axes narrower than planned, lay the labels out again for the narrower axes.
    axes_px: float | None = None
    for _ in range(3):
        fig, planned, actual = _gantt(bars, title, notes, width, axes_px, capacities or {})
        if actual >= planned - 0.5:
            break
        axes_px = actual
    return fig


#: Lanes a row may take so that every label shows; beyond, labels that would collide are left out.
_LANE_CAP = 6
_LABEL_PAD = 4.0  # pixels between a bar and the label drawn after it
_LABEL_GAP = 8.0  # pixels between a label and the next bar of its lane
_INSIDE_PAD = 4.0  # pixels each side of a label drawn inside its bar
_WIDEST_LABEL = 0.45  # share of the axes' width a label drawn after its bar may take
_LANE_HEIGHT = 0.42  # inches
_UNLABELLED = "not labelled (too short to show): "


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    return fig, FigureCanvasAgg(fig).get_renderer()


def _note_lines(notes: Sequence[str], width: float) -> list[str]:
    return [piece for note in notes for piece in (textwrap.wrap(note, int(width * 13), break_on_hyphens=False) or [""])]


def _add_notes(fig: Figure, lines: Sequence[str], height: float) -> tuple[float, float, float, float]:
    """Write ``lines`` at the bottom of ``fig`` (``height`` inches tall) and return the rectangle left
    for the chart, for ``tight_layout``."""
    notes_height = _notes_height(lines)
    for i, line in enumerate(lines):
        fig.text(0.01, (notes_height - 0.1 - 0.22 * i) / height, line, fontsize=9, va="top", ha="left")
    return (0.0, notes_height / height, 1.0, 1.0)


def _notes_height(lines: Sequence[str]) -> float:
    return 0.22 * len(lines) + (0.2 if lines else 0.0)


def _empty_figure(title: str, notes: Sequence[str], width: float) -> Figure:
    lines = _note_lines(notes, width)
    height = 1.6 + 1.3 + _notes_height(lines)
    fig, _ = _figure(width, height)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    layout_rect = _add_notes(fig, lines, height)
    ax.text(0.5, 0.5, "no step started", transform=ax.transAxes, ha="center", va="center", fontsize=12,
            color="#555555")  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout(rect=layout_rect)
    return fig


def _gantt(
    bars: Sequence[Bar], title: str, notes: Sequence[str], width: float, axes_px: float | None,
    capacities: Mapping[str, int],
) -> tuple[Figure, float, float]:  # fmt: skip
    """Draw the chart with labels laid out for axes ``axes_px`` pixels wide (default: 1% short of the axes
    of the chart without its bars and notes); return the figure, the width the labels were laid out for
    and the axes' final width."""
    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

    rows = sorted({b.row for b in bars}, key=lambda row: (row == NO_AGENT, row))  # steps with no agent last
    fig, renderer = _figure(width, 4.0)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("seconds from start")
    ax.grid(axis="x", color="#e0e0e0", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
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
    ax.set_yticks([i + 0.5 for i in range(len(rows))], rows)
    ax.set_ylim(len(rows), 0)

    x0 = min(0.0, min(b.start for b in bars))
    x1 = max(b.end for b in bars)
    span = (x1 - x0) or 1.0
    left, right = x0 - 0.01 * span, x1 + 0.02 * span
    ax.set_xlim(left, right)
    ends = [b.start + max(b.end - b.start, span * 0.002) for b in bars]  # as drawn: even a 0 s step shows
    texts = [ax.text(b.start, 0.5, b.text, fontsize=8, va="center", zorder=4) for b in bars]
    label_px = [t.get_window_extent(renderer).width for t in texts]
    for text in texts:  # placed once the layout is known
        text.set_visible(False)
    if axes_px is None:  # 1% short of the axes' width without bars and notes, which take a few pixels
        fig.tight_layout()
        axes_px = 0.99 * ax.get_window_extent(renderer).width
    caps = {row: max(1, capacities[row]) for row in rows if row in capacities}
    labels = _lay_out(bars, ends, label_px, axes_px, left, right, caps)

    tops: dict[str, float] = {}
    y = 0.0
    for row in rows:
        tops[row] = y
        y += labels.lane_count[row]
    total_lanes = max(1.0, y)
    unlabelled = [b.text for b, shown in zip(bars, labels.shown, strict=True) if not shown]
    crowded = [
        f"{row}: {depth} attempts ran at once, more than its capacity of {caps[row]} (it changed since?); "
        "they are drawn over each other"
        for row, depth in sorted(labels.crowded.items())
    ]
    lines = _note_lines([*notes, *crowded, *([_UNLABELLED + ", ".join(unlabelled)] if unlabelled else [])], width)
    height = max(1.6, _LANE_HEIGHT * total_lanes) + 1.3 + _notes_height(lines)
    fig.set_size_inches(width, height)
    layout_rect = _add_notes(fig, lines, height)

    ax.set_xlim(left, labels.right)
    ax.set_ylim(total_lanes, 0)  # first row on top
    shade = {row: "#f4f4f4" if i % 2 else "white" for i, row in enumerate(rows)}  # every other row shaded
    for row in rows:
        if shade[row] != "white":
            ax.axhspan(tops[row], tops[row] + labels.lane_count[row], color=shade[row], zorder=0, lw=0)
    ax.set_yticks([tops[row] + labels.lane_count[row] / 2 for row in rows], rows)

    height_of_bar = 0.7
    per_unit = axes_px / (labels.right - left)
    centres: dict[str, float] = {}
    index = {bar.label: i for i, bar in enumerate(bars) if bar.attempt is None}
    for i, bar in enumerate(bars):
        centre = tops[bar.row] + labels.lanes[i] + 0.5
        if bar.attempt is None:  # arrows join the last attempts
            centres[bar.label] = centre
        color = _color(bar.status)
        planned = bar.status == "planned"
        ax.add_patch(
            Rectangle(
                (bar.start, centre - height_of_bar / 2), ends[i] - bar.start, height_of_bar,
                facecolor=color, edgecolor="#5a3e99" if planned else "#333333", linewidth=0.8,
                linestyle="--" if planned else "-", hatch=_HATCH.get(bar.status, ""), gid=bar.gid,
                zorder=2, alpha=0.85 if bar.row in labels.crowded else 1.0,
            )
        )  # fmt: skip
        text = texts[i]
        if not labels.shown[i]:
            text.remove()
        elif labels.inside[i]:
            text.set(x=(bar.start + ends[i]) / 2, y=centre, ha="center",
                     color="white" if _is_dark(color) else "black")  # fmt: skip
        else:
            backdrop = {"boxstyle": "square,pad=0.1", "facecolor": shade[bar.row], "edgecolor": "none", "alpha": 0.85}
            text.set(x=ends[i] + _LABEL_PAD / per_unit, y=centre, ha="left", color="black", bbox=backdrop)

    for bar in bars:
        for dep in bar.dependencies:
            if dep not in centres or bar.attempt is not None:
                continue
            ax.add_patch(
                FancyArrowPatch(
                    (ends[index[dep]], centres[dep]), (bar.start, centres[bar.label]), arrowstyle="-|>",
                    mutation_scale=7, color="#6b6b6b", alpha=0.4, linewidth=0.7, shrinkA=0, shrinkB=0,
                    gid=f"arrow:{dep}->{bar.label}", zorder=1.5,
                )
            )  # fmt: skip

    fig.tight_layout(rect=layout_rect)
    for text, shown in zip(texts, labels.shown, strict=True):
        text.set_visible(shown)
    return fig, axes_px, ax.get_window_extent(renderer).width


@dataclass(frozen=True, slots=True)
class _Labels:
    """Where a chart's labels go: each bar's lane within its row, whether its label is drawn inside the
    bar (else after it) and whether it is drawn at all; the lanes of each row, and the right end of the
    x axis, grown to show the labels after the last bars."""

    lanes: list[int]
    inside: list[bool]
    shown: list[bool]
    lane_count: dict[str, int]
    right: float
    #: Rows whose bars overlapped more than their capacity allows lanes for: the most at once.
    crowded: dict[str, int]


def _lay_out(
    bars: Sequence[Bar], ends: Sequence[float], label_px: Sequence[float], axes_px: float, left: float, right: float,
    caps: Mapping[str, int],
) -> _Labels:  # fmt: skip
    """Lay out the labels of ``bars`` (drawn up to ``ends``; labels ``label_px`` pixels wide) on axes
    ``axes_px`` pixels wide from ``left`` to at least ``right``, in at most ``caps[row]`` lanes a row (when
    known)."""
    for attempt in range(8):
        per_unit = axes_px / (right - left)
        inside = [(e - b.start) * per_unit >= w + 2 * _INSIDE_PAD for b, e, w in zip(bars, ends, label_px, strict=True)]
        reach = [
            e if ins else e + (_LABEL_PAD + w + _LABEL_GAP) / per_unit
            for e, w, ins in zip(ends, label_px, inside, strict=True)
        ]
        can = [ins or (_LABEL_PAD + w) / axes_px <= _WIDEST_LABEL for w, ins in zip(label_px, inside, strict=True)]
        shown = _keep_labels(bars, ends, reach, can, caps)
        past = [
            i
            for i, (e, w) in enumerate(zip(ends, label_px, strict=True))
            if shown[i] and not inside[i] and e + (_LABEL_PAD + w + 2) / per_unit > right
        ]
        if not past:
            break
        if attempt == 7:  # not settled (never seen): leave out what still does not fit
            for i in past:
                shown[i] = False
            break
        # a label taking a share k of the axes' width after a bar ending at e ends at the right end r
        # when e + k (r - left) = r
        shares = {i: (_LABEL_PAD + label_px[i] + 2) / axes_px for i in past}
        right = max(right, *((ends[i] - k * left) / (1 - k) for i, k in shares.items()))
    spans = [r if s else e for r, e, s in zip(reach, ends, shown, strict=True)]
    lanes = _lanes(bars, spans, caps)
    lane_count: dict[str, int] = {}
    for bar, lane in zip(bars, lanes, strict=True):
        lane_count[bar.row] = max(lane_count.get(bar.row, 1), lane + 1)
    crowded = {}
    for row, cap in caps.items():
        depth = _depth([(b.start, e) for b, e in zip(bars, ends, strict=True) if b.row == row])
        if depth > cap:
            crowded[row] = depth
    return _Labels(lanes, inside, shown, lane_count, right, crowded)


def _keep_labels(
    bars: Sequence[Bar], ends: Sequence[float], reach: Sequence[float], can: Sequence[bool], caps: Mapping[str, int]
) -> list[bool]:  # fmt: skip
    """Which labels to draw (of those that ``can``): every one, in a row where bars that keep their lane
    up to their label's end (``reach``) take at most the row's lanes (its capacity in ``caps``, else
    ``_LANE_CAP``); else as many as fit in that many lanes (or, with no capacity known, as many as the row's
    bars alone need), taken by earliest end: the most that fit."""
    shown = list(can)
    members: dict[str, list[int]] = {}
    for i, bar in enumerate(bars):
        members.setdefault(bar.row, []).append(i)
    for name, row in members.items():
        most = caps.get(name, _LANE_CAP)
        if _depth([(bars[i].start, reach[i] if shown[i] else ends[i]) for i in row]) <= most:
            continue
        cap = most if name in caps else max(_LANE_CAP, _depth([(bars[i].start, ends[i]) for i in row]))
        starts = sorted(bars[i].start for i in row)
        stops = sorted(ends[i] for i in row)
        after = [i for i in row if shown[i] and reach[i] > ends[i]]  # labels drawn after their bar
        for i in sorted(after, key=lambda i: (reach[i], bars[i].start)):
            low, high = ends[i], reach[i]
            points = [low, *starts[bisect_right(starts, low) : bisect_left(starts, high)]]
            if all(bisect_right(starts, p) - bisect_right(stops, p) < cap for p in points):
                insort(starts, low)
                insort(stops, high)
            else:
                shown[i] = False
    return shown


def _depth(spans: Sequence[tuple[float, float]]) -> int:
    """The most of the spans ``[start, end)`` that overlap at one time."""
    depth = deepest = 0
    for _, change in sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans]):
        depth += change
        deepest = max(deepest, depth)
    return deepest


def _lanes(bars: Sequence[Bar], spans: Sequence[float], caps: Mapping[str, int]) -> list[int]:
    """The lane of each bar within its row, each bar keeping its lane from its start to ``spans``, the first
    lane free first: as many lanes as the most bars that overlap, but no more than ``caps[row]`` (a bar finding
    none free then shares the lane that frees first)."""
    lanes = [0] * len(bars)
    free_at: dict[str, list[float]] = {}
    for i in sorted(range(len(bars)), key=lambda i: (bars[i].row, bars[i].start, spans[i], bars[i].label)):
        bar = bars[i]
        row_free = free_at.setdefault(bar.row, [])
        lane = next((n for n, end in enumerate(row_free) if end <= bar.start), len(row_free))
        if lane == len(row_free) and lane >= caps.get(bar.row, lane + 1):
            lane = min(range(len(row_free)), key=lambda n: row_free[n])
        elif lane == len(row_free):
            row_free.append(0.0)
        row_free[lane] = max(row_free[lane], spans[i])
        lanes[i] = lane
    return lanes


def write_gantt(
    bars: Sequence[Bar], path: str | Path, title: str, *, notes: Sequence[str] = (),
    capacities: Mapping[str, int] | None = None,
) -> Path:  # fmt: skip
    """Draw ``gantt_figure(bars, title, notes=notes, capacities=capacities)`` into the PNG file ``path`` (its
    folder is created) and return the path."""
    path = Path(path)
    figure = gantt_figure(bars, title, notes=notes, capacities=capacities)
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
