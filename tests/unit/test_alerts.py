"""Alert rules fire once per crossing, with hysteresis and cooldown, in virtual time."""

from __future__ import annotations

import pytest

from pepper.core.alert_rules import read_rules_file
from pepper.errors import ConfigError, ValidationError
from pepper.model.alert_config import METRICS, parse_rule
from pepper.model.thresholds import check_threshold
from pepper.monitoring.alerts import AlertRule, RuleState, evaluate


def run(rule, values, step=1.0):
    state, fired = RuleState(), []
    for i, value in enumerate(values):
        state, alert = evaluate(rule, state, value, i * step)
        if alert:
            fired.append((i, alert))
    return fired


def test_fires_once_per_crossing_and_rearms_only_after_clearing_by_the_margin():
    rule = AlertRule("r", "resources", "cpu", threshold=50.0, subject="a")  # margin: 5
    fired = run(rule, [10, 60, 70, 49, 55, 44, 51, 30])
    assert [i for i, _ in fired] == [1, 6]  # 49 is inside the margin, 44 clears it
    first = fired[0][1]
    assert first.alert_id == "r#1" and first.value == 60 and first.message == "a: cpu is 60, above the threshold of 50"


def test_below_rules_and_explicit_hysteresis():
    rule = AlertRule("low", "performance", "throughput", threshold=100.0, above=False, hysteresis=20.0)
    assert [i for i, _ in run(rule, [150, 90, 110, 121, 95])] == [1, 4]


def test_cooldown_keeps_a_flapping_value_quiet():
    rule = AlertRule("r", "resources", "memory", threshold=10.0, hysteresis=0.0, cooldown=5.0)
    assert [i for i, _ in run(rule, [11, 9, 11, 9, 11, 9, 11, 9])] == [0, 6]


def test_missing_values_change_nothing():
    rule = AlertRule("r", "resources", "cpu", threshold=1.0)
    assert [i for i, _ in run(rule, [None, 2, None, 0, None, 2])] == [1, 5]


def test_bad_rules_are_refused():
    with pytest.raises(ValidationError):
        AlertRule("r", "resources", "cpu", threshold="high")
    with pytest.raises(ValidationError):
        AlertRule("r", "resources", "cpu", threshold=1, cooldown=-1)


@pytest.mark.parametrize(
    ("metric", "threshold", "above", "says"),
    [
        ("error_rate", 5, True, r"'error_rate' is a share from 0 to 1 \(0.05 is 5%\): a threshold of 5 is out of"),
        ("error_rate", -0.1, False, "give one from 0 to 1"),
        ("error_rate", 1, True, "never above 1, so the alert could never fire; give a threshold below 1"),
        ("throughput", 0, False, "never below 0, so the alert could never fire; give a threshold above 0"),
        ("cpu", -5, True, "'cpu' is a CPU percentage, 100 for each busy core, so 0 or more: a threshold of -5"),
        ("memory", -1, True, "give one 0 or more"),
        ("cpu_used_percent", 101, True, "a percentage from 0 to 100"),
        ("engine.loop_lag", -0.5, True, "0 or more"),
        ("store.writable", 2, True, r"1 \(yes\) or 0 \(no\)"),
        ("agents.error_rate", 1.5, True, "a share from 0 to 1"),
    ],
)
def test_a_threshold_out_of_its_metrics_range_or_never_crossed_is_refused(metric, threshold, above, says):
    with pytest.raises(ValidationError, match=says) as caught:
        AlertRule("r", "any", metric, threshold=threshold, above=above)
    assert caught.value.field == "threshold"
    if metric in METRICS:  # a configured rule on the metric is held to the same rule
        comparison = ">" if above else "<"
        with pytest.raises(ConfigError, match=says):
            parse_rule({"name": "r", "metric": metric, "threshold": threshold, "comparison": comparison})


@pytest.mark.parametrize(
    ("metric", "threshold", "above"),
    [("error_rate", 0, True), ("error_rate", 1, False), ("error_rate", 0.05, True), ("cpu", 250, True),
     ("cpu_used_percent", 100, False), ("dead_letters", 0, True), ("latency_p95", 0.25, True)],
)  # fmt: skip
def test_a_threshold_a_value_can_cross_is_taken(metric, threshold, above):
    assert AlertRule("r", "any", metric, threshold=threshold, above=above).threshold == threshold
    assert check_threshold(metric, threshold, ">=" if above else "<=") == threshold


def test_the_ends_of_a_range_can_be_reached_with_or_equal():
    assert parse_rule({"name": "r", "metric": "error_rate", "threshold": 1, "comparison": ">="}).threshold == 1.0
    assert parse_rule({"name": "r", "metric": "throughput", "threshold": 0, "comparison": "<="}).threshold == 0.0


def test_a_rules_file_with_a_threshold_out_of_range_is_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("- name: errors\n  metric: error_rate\n  threshold: 20\n")
    with pytest.raises(ConfigError, match=r"rules.yaml: alert 'errors': 'error_rate' is a share from 0 to 1"):
        read_rules_file(str(path))
