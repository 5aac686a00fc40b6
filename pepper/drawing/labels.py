"""Where a Gantt chart's labels go: the lane of each bar within its agent's row, and which labels are drawn
inside their bar, after it, or not at all, so that no label runs into another bar or label."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pepper.drawing.bars import Bar

#: Lanes a row may take so that every label shows; beyond, labels that would collide are left out.
LANE_CAP = 6
LABEL_PAD = 4.0  # pixels between a bar and the label drawn after it
LABEL_GAP = 8.0  # pixels between a label and the next bar of its lane
INSIDE_PAD = 4.0  # pixels each side of a label drawn inside its bar
WIDEST_LABEL = 0.45  # share of the axes' width a label drawn after its bar may take


@dataclass(frozen=True, slots=True)
class Labels:
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


def lay_out(
    bars: Sequence[Bar], ends: Sequence[float], label_px: Sequence[float], axes_px: float, left: float, right: float,
    caps: Mapping[str, int],
) -> Labels:  # fmt: skip
    """Lay out the labels of ``bars`` (drawn up to ``ends``; labels ``label_px`` pixels wide) on axes
    ``axes_px`` pixels wide from ``left`` to at least ``right``, in at most ``caps[row]`` lanes a row (when
    known)."""
    for attempt in range(8):
        per_unit = axes_px / (right - left)
        inside = [(e - b.start) * per_unit >= w + 2 * INSIDE_PAD for b, e, w in zip(bars, ends, label_px, strict=True)]
        reach = [
            e if ins else e + (LABEL_PAD + w + LABEL_GAP) / per_unit
            for e, w, ins in zip(ends, label_px, inside, strict=True)
        ]
        can = [ins or (LABEL_PAD + w) / axes_px <= WIDEST_LABEL for w, ins in zip(label_px, inside, strict=True)]
        shown = _keep_labels(bars, ends, reach, can, caps)
        past = [
            i
            for i, (e, w) in enumerate(zip(ends, label_px, strict=True))
            if shown[i] and not inside[i] and e + (LABEL_PAD + w + 2) / per_unit > right
        ]
        if not past:
            break
        if attempt == 7:  # not settled (never seen): leave out what still does not fit
            for i in past:
                shown[i] = False
            break
        # a label taking a share k of the axes' width after a bar ending at e ends at the right end r
        # when e + k (r - left) = r
        shares = {i: (LABEL_PAD + label_px[i] + 2) / axes_px for i in past}
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
    return Labels(lanes, inside, shown, lane_count, right, crowded)


def _keep_labels(
    bars: Sequence[Bar], ends: Sequence[float], reach: Sequence[float], can: Sequence[bool], caps: Mapping[str, int]
) -> list[bool]:  # fmt: skip
    """Which labels to draw (of those that ``can``): every one, in a row where bars that keep their lane
    up to their label's end (``reach``) take at most the row's lanes (its capacity in ``caps``, else
    ``LANE_CAP``); else as many as fit in that many lanes (or, with no capacity known, as many as the row's
    bars alone need), taken by earliest end: the most that fit."""
    shown = list(can)
    members: dict[str, list[int]] = {}
    for i, bar in enumerate(bars):
        members.setdefault(bar.row, []).append(i)
    for name, row in members.items():
        most = caps.get(name, LANE_CAP)
        if _depth([(bars[i].start, reach[i] if shown[i] else ends[i]) for i in row]) <= most:
            continue
        cap = most if name in caps else max(LANE_CAP, _depth([(bars[i].start, ends[i]) for i in row]))
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
