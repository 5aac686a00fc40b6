"""The Gantt chart: bars on one row per agent, coloured by status, arrows from dependencies, notes under it.

matplotlib is optional (``pip install 'pepper[charts]'``) and only imported when a chart is drawn.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepper.drawing.bars import HATCH, NO_AGENT, STATUS_COLORS, Bar, is_dark, status_color
from pepper.drawing.labels import LABEL_PAD, lay_out
from pepper.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120
CHARTS_MISSING = "drawing charts needs matplotlib: pip install 'pepper[charts]'"
_LANE_HEIGHT = 0.42  # inches
_UNLABELLED = "not labelled (too short to show): "


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
    lanes of the row. A row that would need more than ``LANE_CAP`` lanes to show every label leaves out
    the labels that would collide (as few as it can) and a note ``not labelled (too short to show): ...``
    names their steps."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigError(CHARTS_MISSING) from None

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


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
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
            Patch(facecolor=status_color(s), edgecolor="#333333", hatch=HATCH.get(s, ""),
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
    labels = lay_out(bars, ends, label_px, axes_px, left, right, caps)

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
        color = status_color(bar.status)
        planned = bar.status == "planned"
        ax.add_patch(
            Rectangle(
                (bar.start, centre - height_of_bar / 2), ends[i] - bar.start, height_of_bar,
                facecolor=color, edgecolor="#5a3e99" if planned else "#333333", linewidth=0.8,
                linestyle="--" if planned else "-", hatch=HATCH.get(bar.status, ""), gid=bar.gid,
                zorder=2, alpha=0.85 if bar.row in labels.crowded else 1.0,
            )
        )  # fmt: skip
        text = texts[i]
        if not labels.shown[i]:
            text.remove()
        elif labels.inside[i]:
            text.set(x=(bar.start + ends[i]) / 2, y=centre, ha="center",
                     color="white" if is_dark(color) else "black")  # fmt: skip
        else:
            backdrop = {"boxstyle": "square,pad=0.1", "facecolor": shade[bar.row], "edgecolor": "none", "alpha": 0.85}
            text.set(x=ends[i] + LABEL_PAD / per_unit, y=centre, ha="left", color="black", bbox=backdrop)

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


def write_gantt(
    bars: Sequence[Bar], path: str | Path, title: str, *, notes: Sequence[str] = (),
    capacities: Mapping[str, int] | None = None,
) -> Path:  # fmt: skip
    """Draw ``gantt_figure(bars, title, notes=notes, capacities=capacities)`` into the PNG file ``path`` (its
    folder is created) and return the path."""
    path = Path(path)
    figure = gantt_figure(bars, title, notes=notes, capacities=capacities)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path
