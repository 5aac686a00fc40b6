"""Gantt charts of workflow runs and DOT graphs of workflows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pepper.drawing import (
    NO_AGENT,
    STATUS_COLORS,
    Bar,
    gantt_figure,
    run_bars,
    run_notes,
    run_title,
    workflow_dot,
    write_gantt,
)
from pepper.model.task import TaskState
from pepper.model.workflow import WorkflowSpec, make_step
from pepper.model.workflow_run import RunState, StepResult, WorkflowResult

T0 = 1_000.0
C, F, X, IP = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED, TaskState.IN_PROGRESS


def step(step_id, state, agent=None, start=None, end=None, deps=(), skipped=False):
    return StepResult(
        step_id, f"run/{step_id}", state, agent, started_at=None if start is None else T0 + start,
        finished_at=None if end is None else T0 + end, skipped=skipped, dependencies=tuple(deps),
    )  # fmt: skip


def result_of(*steps, status=RunState.FAILED, finished=None):
    return WorkflowResult(
        "docs-1", "docs", status, {s.step_id: s for s in steps}, created_at=T0,
        finished_at=None if finished is None else T0 + finished,
    )  # fmt: skip


def sample():
    """fetch -> (parse, lint) -> render; lint failed, deploy skipped, publish never started."""
    return result_of(
        step("fetch", C, "agent-a", 1, 4),
        step("parse", C, "agent-b", 4.5, 8, ["fetch"]),
        step("lint", F, "agent-a", 4.2, 5, ["fetch"]),
        step("render", IP, "agent-b", 8.5, None, ["parse", "lint"]),
        step("deploy", C, skipped=True, deps=["lint"]),
        step("publish", X, deps=["render", "deploy"]),
        status=RunState.RUNNING,
    )


def bar_rects(fig):
    return [p for ax in fig.axes for p in ax.patches if (p.get_gid() or "").startswith("bar:")]


def arrows(fig):
    return sorted(p.get_gid() for ax in fig.axes for p in ax.patches if (p.get_gid() or "").startswith("arrow:"))


def row_labels(fig):
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


# -- run_bars / run_notes ---------------------------------------------------------------------------


def test_run_bars_time_from_the_first_start_and_end_a_running_step_at_now():
    bars = {b.label: b for b in run_bars(sample(), now=T0 + 12)}
    assert sorted(bars) == ["fetch", "lint", "parse", "render"]
    assert bars["fetch"] == Bar("fetch", "agent-a", 0.0, 3.0, "completed")
    assert bars["lint"].status == "failed" and bars["lint"].dependencies == ("fetch",)
    assert bars["parse"].start == pytest.approx(3.5) and bars["parse"].end == pytest.approx(7.0)
    assert bars["render"].status == "in_progress"
    assert bars["render"].start == pytest.approx(7.5) and bars["render"].end == pytest.approx(11.0)


def test_run_bars_put_steps_without_an_agent_on_their_own_row_and_never_end_before_they_start():
    result = result_of(step("a", X, None, 2, None), status=RunState.CANCELLED, finished=1)
    (bar,) = run_bars(result, now=T0 + 50)
    assert (bar.row, bar.start, bar.end, bar.status) == (NO_AGENT, 0.0, 0.0, "cancelled")


def test_run_bars_of_a_run_where_nothing_started_is_empty_and_notes_say_why():
    result = result_of(step("a", X), step("b", C, skipped=True), step("c", None), status=RunState.CANCELLED)
    assert run_bars(result, now=T0) == []
    assert run_notes(result) == ["skipped: b", "never started: a (cancelled), c (waiting)"]


def test_run_notes_and_title_of_a_running_run():
    assert run_notes(sample()) == ["skipped: deploy", "not started yet: publish (cancelled)"]
    assert run_title(sample()) == "docs - run docs-1 - running"
    assert run_title(result_of(step("a", C, "x", 0, 1), status=RunState.COMPLETED, finished=90)).endswith(
        "completed in 1m30s"
    )


# -- the chart --------------------------------------------------------------------------------------


def test_gantt_has_one_bar_per_started_step_and_one_row_per_agent():
    bars = run_bars(sample(), now=T0 + 12)
    fig = gantt_figure(bars, "docs", notes=run_notes(sample()))
    assert sorted(p.get_gid() for p in bar_rects(fig)) == ["bar:fetch", "bar:lint", "bar:parse", "bar:render"]
    assert row_labels(fig) == ["agent-a", "agent-b"]
    texts = {t.get_text() for t in fig.texts}
    assert {"skipped: deploy", "not started yet: publish (cancelled)"} <= texts
    assert fig.axes[0].get_title(loc="left") == "docs"


def test_gantt_colours_by_status_hatches_failures_and_lists_present_statuses():
    fig = gantt_figure(run_bars(sample(), now=T0 + 12), "docs")
    rects = {p.get_gid(): p for p in bar_rects(fig)}
    assert rects["bar:lint"].get_hatch() and not rects["bar:fetch"].get_hatch()
    from matplotlib.colors import to_hex

    assert to_hex(rects["bar:fetch"].get_facecolor()) == STATUS_COLORS["completed"]
    assert to_hex(rects["bar:render"].get_facecolor()) == STATUS_COLORS["in_progress"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["completed", "failed", "in progress"]


def test_gantt_draws_an_arrow_per_dependency_between_two_bars():
    fig = gantt_figure(run_bars(sample(), now=T0 + 12), "docs")
    # deploy and publish are not bars: lint -> deploy and render -> publish are not drawn
    assert arrows(fig) == ["arrow:fetch->lint", "arrow:fetch->parse", "arrow:lint->render", "arrow:parse->render"]


def test_gantt_rows_are_sorted_with_no_agent_last_and_overlapping_steps_do_not_cover_each_other():
    bars = [
        Bar("x", NO_AGENT, 0, 1, "completed"),
        Bar("p", "zeta", 0, 5, "completed"),
        Bar("q", "zeta", 1, 3, "failed"),
        Bar("r", "alpha", 0, 2, "planned"),
    ]
    fig = gantt_figure(bars, "plan")
    assert row_labels(fig) == ["alpha", "zeta", NO_AGENT]
    rects = {p.get_gid(): p for p in bar_rects(fig)}
    p, q = rects["bar:p"], rects["bar:q"]
    assert p.get_y() + p.get_height() <= q.get_y() or q.get_y() + q.get_height() <= p.get_y()


def test_gantt_grows_with_the_number_of_agents():
    small = gantt_figure([Bar("a", "one", 0, 1, "completed")], "one")
    big = gantt_figure([Bar(f"s{i}", f"agent-{i:02d}", i, i + 2, "completed") for i in range(30)], "thirty")
    assert len(row_labels(big)) == 30 and len(bar_rects(big)) == 30
    assert big.get_size_inches()[1] > 2.5 * small.get_size_inches()[1]


def drawn_labels(fig):
    """The labels drawn on the chart, with their boxes in pixels once the figure is drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return {t.get_text(): t.get_window_extent(renderer) for t in fig.axes[0].texts if t.get_visible()}


def bar_boxes(fig):
    renderer = fig.canvas.get_renderer()
    return {p.get_gid().removeprefix("bar:"): p.get_window_extent(renderer) for p in bar_rects(fig)}


def assert_labels_clear(fig):
    """No two labels overlap, no label covers a bar but its own, every label is within the axes."""
    labels = drawn_labels(fig)
    boxes = list(labels.items())
    for i, (name, box) in enumerate(boxes):
        for other, other_box in boxes[i + 1 :]:
            assert not box.overlaps(other_box), f"labels {name!r} and {other!r} overlap"
    axes = fig.axes[0].get_window_extent(fig.canvas.get_renderer())
    bars = bar_boxes(fig)  # once: each box costs a transform of the bar's path
    for name, box in labels.items():
        assert axes.x0 <= box.x0 and box.x1 <= axes.x1 + 0.5, f"label {name!r} is outside the axes"
        for bar, bar_box in bars.items():
            assert bar == name or not box.overlaps(bar_box), f"label {name!r} covers bar {bar!r}"
    return labels


def lanes_of(fig, row_bars):
    return {round(p.get_y(), 6) for p in bar_rects(fig) if p.get_gid().removeprefix("bar:") in row_bars}


def short_bars(count, every, name="doc-monitoring-{:02d}"):
    """``count`` bars of 5 ms on one agent, one every ``every`` seconds, and a long one on another agent."""
    bars = [Bar(name.format(i), "docs", i * every, i * every + 0.005, "completed") for i in range(count)]
    return [*bars, Bar("deploy", "deploy", 0.0, 1.0, "completed", (bars[-1].label,))]


def test_gantt_labels_after_short_bars_keep_their_lane_so_no_two_labels_overlap():
    bars = short_bars(10, 0.05)
    fig = gantt_figure(bars, "docs", notes=["skipped: x"])
    labels = assert_labels_clear(fig)
    assert set(labels) == {b.label for b in bars}  # every label drawn
    assert sorted(p.get_gid() for p in bar_rects(fig)) == sorted(f"bar:{b.label}" for b in bars)
    assert 1 < len(lanes_of(fig, labels.keys() - {"deploy"})) <= 6  # the labels took more lanes than the bars
    assert [t.get_text() for t in fig.texts] == ["skipped: x"]


def test_gantt_labels_of_the_last_bars_widen_the_x_axis_to_fit():
    bars = [
        Bar("build", "a", 0.0, 10.0, "completed"),
        Bar("a-rather-long-label-at-the-very-end", "a", 10.0, 10.01, "failed"),
    ]
    fig = gantt_figure(bars, "end")
    assert set(assert_labels_clear(fig)) == {"build", "a-rather-long-label-at-the-very-end"}
    assert fig.axes[0].get_xlim()[1] > 10.5


def test_gantt_of_many_short_bars_caps_the_lanes_and_names_the_steps_it_could_not_label():
    bars = short_bars(60, 0.005)
    fig = gantt_figure(bars, "docs", notes=["skipped: x"])
    labels = assert_labels_clear(fig)
    assert sorted(p.get_gid() for p in bar_rects(fig)) == sorted(f"bar:{b.label}" for b in bars)  # every bar drawn
    assert len(lanes_of(fig, {b.label for b in bars if b.row == "docs"})) <= 6
    notes = [t.get_text() for t in fig.texts]
    assert notes[0] == "skipped: x" and notes[1].startswith("not labelled (too short to show): doc-monitoring-")
    unlabelled = " ".join(notes[1:]).removeprefix("not labelled (too short to show): ").split(", ")
    assert unlabelled and len(labels) > 10  # some left out, many kept
    assert sorted([*labels, *unlabelled]) == sorted(b.label for b in bars)  # each step labelled or named


def test_gantt_of_hundreds_of_bars_keeps_every_bar_and_no_label_overlaps():
    bars = []
    for i in range(240):
        row = f"agent-{i % 4}"
        start = (i // 4) * 0.01 + (i % 3) * 0.002
        deps = (bars[-4].label,) if i >= 4 else ()
        bars.append(Bar(f"step-{i:03d}", row, start, start + 0.004 + (i % 7) * 0.004, "completed", deps))
    fig = gantt_figure(bars, "long run")
    labels = assert_labels_clear(fig)
    assert len(bar_rects(fig)) == 240 and len(labels) > 100
    named = " ".join(t.get_text() for t in fig.texts)
    assert all(label in named for label in {b.label for b in bars} - labels.keys())
    assert fig.get_size_inches()[0] <= 20 and fig.get_size_inches()[1] <= 4 * 6 * 0.42 + 4


def test_write_gantt_writes_a_png_matplotlib_can_read(tmp_path: Path):
    from matplotlib.image import imread

    path = write_gantt(run_bars(sample(), now=T0 + 12), tmp_path / "charts" / "run.png", "docs")
    assert path == tmp_path / "charts" / "run.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = imread(path).shape
    assert width >= 800 and height >= 250


def test_write_gantt_of_no_bars_says_no_step_started(tmp_path: Path):
    fig = gantt_figure([], "docs", notes=["never started: a (cancelled)"])
    assert not bar_rects(fig)
    assert "no step started" in {t.get_text() for t in fig.axes[0].texts}
    path = write_gantt([], str(tmp_path / "empty.png"), "docs")
    from matplotlib.image import imread

    assert imread(path).shape[1] > 500


def test_importing_pepper_core_does_not_load_matplotlib_and_its_absence_is_a_config_error():
    code = (
        "import sys\n"
        "import pepper.core, pepper.drawing as charts\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "sys.modules['matplotlib'] = None\n"
        "from pepper.errors import ConfigError\n"
        "try:\n"
        "    charts.gantt_figure([], 't')\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "drawing charts needs matplotlib: pip install 'pepper[charts]'"


# -- DOT --------------------------------------------------------------------------------------------

_QUOTED = re.compile(r'"((?:\\\\|\\"|[^"\\]|\\[^"\\])*)"')


def dot_strings(text):
    """The quoted strings of DOT text as Graphviz reads them (``\\"`` is a quote, everything else stays)."""
    return [m.group(1).replace('\\"', '"') for m in _QUOTED.finditer(text)]


def shown(label):
    """A label's escString as drawn: ``\\\\`` is a backslash, ``\\n`` a line break."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\"}.get(m.group(1), m.group(1)), label)


def spec():
    return (
        WorkflowSpec('docs "nightly"')
        .with_step(make_step("fetch", "http.get", agent="crawler"))
        .with_step(make_step("parse", "parse", dependencies=["fetch"]))
        .with_step(make_step("lint", "lint", dependencies=["fetch"], condition='inputs.path == "C:\\\\tmp"'))
        .with_step(make_step("render.v2", "render", dependencies=["parse", "lint"], condition=lambda c: True))
    )


def test_dot_has_every_step_and_dependency_left_to_right():
    text = workflow_dot(spec())
    assert text.startswith('digraph "docs \\"nightly\\"" {') and "rankdir=LR;" in text
    for node in ("fetch", "parse", "lint", "render.v2"):
        assert re.search(rf'^  "{re.escape(node)}" \[label=', text, re.M)
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)";$', text, re.M)
    assert sorted(edges) == [("fetch", "lint"), ("fetch", "parse"), ("lint", "render.v2"), ("parse", "render.v2")]
    assert 'fillcolor="#' not in text.split("edge [")[1]  # no result, no status fill


def test_dot_labels_escape_quotes_backslashes_and_newlines():
    text = workflow_dot(spec())
    assert text.count("{") == text.count("}") == 1
    labels = [shown(s) for s in dot_strings(text)]
    assert 'docs "nightly"' in dot_strings(text)
    assert "fetch\nhttp.get\n@crawler" in labels
    assert 'lint\nlint\nwhen: inputs.path == "C:\\\\tmp"' in labels  # the condition's own text, shown as is
    assert "render.v2\nrender\nwhen: (Python condition)" in labels
    odd = workflow_dot(WorkflowSpec("a\\b\nc").with_step(make_step("x", "t")))
    assert dot_strings(odd)[0] == "a\\\\b\\nc" and shown(dot_strings(odd)[0]) == "a\\b\nc"


def test_dot_with_a_result_fills_nodes_by_status():
    result = result_of(
        step("fetch", C, "crawler", 0, 1), step("parse", F, "x", 1, 2, ["fetch"]), step("lint", C, skipped=True)
    )
    text = workflow_dot(spec(), result)
    line = {m.group(1): m.group(0) for m in re.finditer(r'^  "([^"]+)" \[.*$', text, re.M)}
    assert f'fillcolor="{STATUS_COLORS["completed"]}"' in line["fetch"] and "[completed]" in line["fetch"]
    assert f'fillcolor="{STATUS_COLORS["failed"]}"' in line["parse"]
    assert f'fillcolor="{STATUS_COLORS["skipped"]}"' in line["lint"]
    assert "fillcolor" not in line["render.v2"]  # not in the result: the default white
    assert "dashed" in line["lint"] and "dashed" not in line["fetch"]  # conditional steps


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_dot_renders_with_graphviz(tmp_path: Path):
    result = result_of(step("fetch", C, "crawler", 0, 1), step("parse", F, "x", 1, 2, ["fetch"]))
    out = tmp_path / "wf.svg"
    subprocess.run(["dot", "-Tsvg", "-o", str(out)], input=workflow_dot(spec(), result), text=True, check=True,
                   timeout=30)  # fmt: skip
    svg = out.read_text()
    assert "render.v2" in svg and "C:\\\\tmp" in svg


# -- every attempt, and no more lanes than an agent's capacity ----------------------------------------


def test_run_bars_draw_every_attempt_the_earlier_ones_marked_by_how_they_ended():
    from pepper.drawing import EarlierAttempt

    result = result_of(step("build", C, "agent-b", 6, 9), step("test", C, "agent-a", 9.5, 10, ["build"]))
    earlier = {"build": [EarlierAttempt(1, "agent-a", T0 + 1, T0 + 2, "failed", "OSError: disk full"),
                         EarlierAttempt(2, "agent-a", T0 + 3, T0 + 5, "interrupted")]}  # fmt: skip
    bars = run_bars(result, earlier=earlier)
    assert [(b.label, b.attempt, b.row, b.start, b.end, b.status) for b in bars] == [
        ("build", 1, "agent-a", 0.0, 1.0, "failed"),
        ("build", 2, "agent-a", 2.0, 4.0, "interrupted"),
        ("build", None, "agent-b", 5.0, 8.0, "completed"),
        ("test", None, "agent-a", 8.5, 9.0, "completed"),
    ]
    assert [b.text for b in bars] == ["\u00d7 build #1", "build #2", "build", "test"]
    fig = gantt_figure(bars, "docs")
    assert sorted(p.get_gid() for p in bar_rects(fig)) == ["bar:build", "bar:build#1", "bar:build#2", "bar:test"]
    assert arrows(fig) == ["arrow:build->test"]  # from the attempt that completed only
    failed = next(p for p in bar_rects(fig) if p.get_gid() == "bar:build#1")
    assert failed.get_hatch() == "///"


def test_an_agents_row_has_no_more_lanes_than_its_capacity_labels_left_out_instead():
    bars = short_bars(10, 0.05)
    row = {b.label for b in bars} - {"deploy"}
    fig = gantt_figure(bars, "docs", capacities={"docs": 1, "deploy": 1})
    assert len(lanes_of(fig, row)) == 1  # without capacities the labels take more lanes (see above)
    assert any(t.get_text().startswith("not labelled") for t in fig.texts)


def test_attempts_that_overlapped_beyond_the_capacity_share_its_lanes_and_a_note_says_so():
    bars = [Bar(f"s{i}", "docs", 0.0, 10.0, "completed") for i in range(3)]
    fig = gantt_figure(bars, "docs", capacities={"docs": 2})
    assert len(lanes_of(fig, {"s0", "s1", "s2"})) == 2
    notes = " ".join(t.get_text() for t in fig.texts)
    assert "docs: 3 attempts ran at once, more than its capacity of 2" in notes
