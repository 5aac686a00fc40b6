"""Alert rules fire once per crossing, with hysteresis and cooldown, in virtual time."""

from __future__ import annotations

import pytest

from pepper.errors import ValidationError
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
