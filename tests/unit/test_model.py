"""Pure model pieces: units, resources, graphs, settings, backoff, ready queues."""

from __future__ import annotations

import random

import pytest

from pepper.agents.function import FunctionAgent
from pepper.errors import AgentDefinitionError, ConfigError, CycleError, InvalidDelayError, ValidationError
from pepper.model.agent import AgentSpec
from pepper.model.agent_options import OPTION_NAMES
from pepper.model.dag import find_cycle, topological_order
from pepper.model.resources import Resources
from pepper.model.retry import Backoff
from pepper.model.settings import Settings
from pepper.model.timing import parse_delay
from pepper.model.units import format_duration, parse_duration, parse_quantity
from pepper.scheduling.queue import ReadyQueue, ageing_key


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800), ("500ms", 0.5), (90, 90), ("1.5h", 5400)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["-5s", "5 minutes", "", "1y", True, None, float("inf"), "9" * 400 + "s"])
def test_bad_durations(bad):
    with pytest.raises(ValidationError):
        parse_duration(bad)


@pytest.mark.parametrize("negative", ["-5s", " -1", "-1.5h", -3])
def test_a_negative_duration_is_told_so_not_that_it_is_no_duration(negative):
    with pytest.raises(ValidationError, match="timeout cannot be negative"):
        parse_duration(negative, "timeout")


@pytest.mark.parametrize("bad", ["5x", "soon", True, [5]])
def test_a_bad_delay_names_each_valid_form_once(bad):
    # A delay takes what a duration takes and a timedelta: the message lists each form once
    with pytest.raises(InvalidDelayError) as caught:
        parse_delay(bad)
    message = str(caught.value)
    assert message.startswith("delay ") and "datetime.timedelta" in message
    for form in ("seconds", "'30s'", "'15m'", "datetime.timedelta"):
        assert message.count(form) == 1, message


@pytest.mark.parametrize(
    ("name", "value", "amount"),
    [
        ("cpu", 1.5, 1.5),
        ("cpu", "500m", 0.5),
        ("cpu", "2", 2.0),
        ("memory", "4Gi", 4096.0),
        ("memory", "512Mi", 512.0),
        ("memory", 256, 256.0),
        ("storage", "1G", 1e9 / 2**20),
        ("gpu", "1", 1.0),
    ],
)
def test_quantities(name, value, amount):
    assert parse_quantity(name, value) == pytest.approx(amount)


@pytest.mark.parametrize(("name", "value"), [("cpu", -1), ("memory", "-1Gi"), ("memory", "4Gx"), ("gpu", "2Gi")])
def test_bad_quantities(name, value):
    with pytest.raises(ValidationError):
        parse_quantity(name, value)


def test_resources_compare_fit_and_report_shortfall():
    need = Resources.parse({"cpu": 2, "memory": "1Gi"})
    assert need == Resources({"memory": 1024.0, "cpu": 2.0, "gpu": 0})
    assert need.fits_within({"cpu": 4, "memory": 2048})
    assert need.shortfall({"cpu": 0.5, "memory": 4096}) == {"cpu": 1.5}
    with pytest.raises(ValidationError, match="not a valid resource name"):
        Resources.parse({"CPU!": 1})


def test_find_cycle_on_a_deep_chain_does_not_recurse():
    graph = {str(i): [str(i + 1)] for i in range(5000)}
    graph["5000"] = ["0"]
    cycle = find_cycle(["0"], lambda n: graph.get(n, ()))
    assert cycle[0] == cycle[-1] and len(cycle) == 5002


def test_topological_order_puts_dependencies_first_and_is_stable():
    graph = {"deploy": ["review"], "review": ["docs"], "docs": [], "lint": []}
    assert topological_order(graph) == ["docs", "review", "deploy", "lint"]
    rng = random.Random(7)
    big = {str(i): [str(j) for j in rng.sample(range(i), min(i, 3))] for i in range(300)}
    order = topological_order(big)
    position = {n: i for i, n in enumerate(order)}
    assert all(position[d] < position[n] for n, deps in big.items() for d in deps)
    with pytest.raises(CycleError):
        topological_order({"a": ["b"], "b": ["a"]})


def test_settings_refuse_unknown_names_and_bad_values():
    assert Settings.build(poll_interval="500ms").poll_interval == 0.5
    with pytest.raises(ConfigError, match="Did you mean 'poll_interval'"):
        Settings.build(pol_interval=1)
    with pytest.raises(ConfigError, match="must be positive"):
        Settings.build(visibility_timeout=0)
    with pytest.raises(ConfigError, match="synchronous"):
        Settings.build(synchronous="sometimes")
    with pytest.raises(ConfigError, match="'retry_max_delay' must be at most 366 days"):
        Settings.build(retry_max_delay=1e300)
    with pytest.raises(ConfigError, match="'retry_backoff' must be >= 1 and finite"):
        Settings.build(retry_backoff=float("inf"))


def test_backoff_doubles_caps_and_jitters_within_bounds_reproducibly():
    backoff = Backoff(delay=1.0, multiplier=2.0, max_delay=10.0, jitter=0.25)
    assert [backoff.base(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    for retry in range(1, 8):
        delay = backoff.delay_for(retry, "task-x")
        assert backoff.base(retry) * 0.75 <= delay <= backoff.base(retry)
        assert delay == backoff.delay_for(retry, "task-x")
    spread = {round(backoff.delay_for(3, f"task-{i}"), 6) for i in range(50)}
    assert len(spread) > 40  # different tasks retry at different moments


def test_ready_queue_serves_by_key_then_ticket_and_skips_dead_tickets():
    queue = ReadyQueue()
    live = {"a": 1, "b": 2, "c": 3}
    queue.push(ageing_key(10, 0.0, 1.0), 1, "a")
    queue.push(ageing_key(20, 0.0, 1.0), 2, "b")
    queue.push(ageing_key(20, 0.0, 1.0), 3, "c")
    is_live = lambda tid, seq: live.get(tid) == seq  # noqa: E731
    assert queue.head(is_live)[2] == "b"
    del live["b"]
    assert queue.head(is_live)[2] == "c"
    assert queue.count_before(ageing_key(10, 0.0, 1.0), 1, is_live) == 1


def test_agent_specs_validate_with_the_agent_named():
    spec = AgentSpec.build("docs", task_types=["documentation"], skills=["markdown"], capacity=2)
    assert spec.accepts("documentation") and not spec.accepts("review")
    assert AgentSpec.build("any", task_types=["*"]).accepts("whatever")
    with pytest.raises(AgentDefinitionError, match="agent 'docs': capacity"):
        AgentSpec.build("docs", task_types=["x"], capacity=0)
    with pytest.raises(AgentDefinitionError, match="task_types must list"):
        AgentSpec.build("docs", task_types=[])
    with pytest.raises(AgentDefinitionError, match="not valid"):
        AgentSpec.build("has space", task_types=["x"])


def test_an_unknown_agent_option_is_refused_with_the_valid_ones_named():
    # Given an option no agent has (a slip for "capacity")
    # When an agent is built with it, Then the error names the option, the valid ones and the likely fix
    with pytest.raises(AgentDefinitionError, match=r"unknown option 'capacty'.*capacity") as caught:
        AgentSpec.build("docs", task_types=["x"], capacty=2)
    assert caught.value.field == "capacty"
    assert all(name in str(caught.value) for name in OPTION_NAMES)
    # The same declaration guards a function agent (what @pepper.agent builds)
    with pytest.raises(AgentDefinitionError, match="unknown option 'colour'"):
        FunctionAgent(lambda task: None, "docs", task_types=["x"], colour="red")  # type: ignore[call-arg]


def test_every_agent_option_has_its_default_when_not_given():
    spec = AgentSpec.build("docs", task_types=["x"], **dict.fromkeys(OPTION_NAMES))
    assert spec == AgentSpec.build("docs", task_types=["x"])
    assert (spec.skills, spec.capacity, spec.type, spec.recovery) == (frozenset(), 1, "python", None)
    assert dict(spec.config) == {}


def test_format_duration():
    assert [format_duration(s) for s in (0.25, 12.5, 200, 7500)] == ["250ms", "12.5s", "3m20s", "2h05m"]


@pytest.mark.parametrize(
    "ids", [(), ("a",), ("a", "b c", "é"), ('q"x',), ("back\\slash",), ("tab\tno",), ("a", 'q"x'), ("a", "l\u2028s")]
)
def test_id_lists_encode_to_json_that_reads_back(ids):
    import json

    from pepper.model.codec import encode, encode_ids

    assert json.loads(encode_ids(ids)) == list(ids)
    assert encode_ids(ids) == encode(list(ids))  # the text the general encoder writes, whichever way it is made


def test_plain_id_lists_are_joined_without_the_json_encoder(monkeypatch):
    from pepper.model import codec

    monkeypatch.setattr(codec, "encode", lambda value, *args, **kwargs: pytest.fail(f"encoded {value!r}"))
    assert codec.encode_ids(("w2-3-45", "w2-3-12", "é")) == '["w2-3-45","w2-3-12","é"]'


def test_a_task_id_or_type_that_is_a_path_segment_of_its_own_is_refused() -> None:
    from pepper.model.submission import build_task

    for field, args in (("task_id", {"task_id": "..", "task_type": "t"}), ("task_type", {"task_type": "."})):
        with pytest.raises(ValidationError, match="cannot be") as refused:
            build_task(**args)
        assert refused.value.field == field
    assert build_task(task_id="./x", task_type="t").task_id == "./x"
