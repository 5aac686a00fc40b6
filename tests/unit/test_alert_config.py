"""Alert rules as configuration reads them: webhook URLs checked whole (errors never show their secret parts),
durations bounded, a rule name given twice refused wherever rules are combined."""

from __future__ import annotations

import pytest

from pepper.core.alert_rules import with_rules_file
from pepper.errors import ConfigError
from pepper.model.alert_config import MAX_DURATION, parse_rule, parse_rules

SECRETS = ("s3cret-pw", "alice", "XXXXSECRETXXXX", "tok3n")


def rule_with(**sink: object) -> dict[str, object]:
    return {"name": "r", "metric": "error_rate", "threshold": 0.5, "sinks": [{"type": "webhook", **sink}]}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("htps://alice:s3cret-pw@hooks.example.com/XXXXSECRETXXXX", "htps://hooks.example.com/… must start with http"),
        ("https://alice:s3cret-pw@hooks.example.com/XXXX SECRETXXXX", "https://hooks.example.com/… has a space"),
        ("https://hooks.example.com/XXXXSECRETXXXX\n", "a control character"),
        ("https://hooks.example.com/XXXXSECRETXXXX\t?a=tok3n", "a control character"),
        ("https://hooks.example.com/XXXXSECRETXXXXé", "beyond ASCII; percent-encode it"),
        ("https://alice:s3cret-pw@hooks.example.com:99999/XXXXSECRETXXXX", "a port that is not a number from 1 to"),
        ("https://hooks.example.com:0/XXXXSECRETXXXX?t=tok3n", "a port that is not a number from 1 to 65535"),
        ("https://alice:s3cret-pw@hooks.example.com:http/XXXXSECRETXXXX", "a port that is not a number"),
        ("https:///XXXXSECRETXXXX", "names no host"),
        ("https://alice:s3cret-pw@/XXXXSECRETXXXX", "names no host"),
        ("https://[::1/XXXXSECRETXXXX", "cannot be read"),
        ("hooks.example.com/XXXXSECRETXXXX", "must start with http:// or https://"),
        ("", "got nothing"),
        (None, "got nothing"),
        (8080, "got a int"),
    ],
)
def test_a_bad_webhook_url_is_refused_when_rules_load_showing_at_most_its_scheme_host_and_port(url, says):
    with pytest.raises(ConfigError, match="alert 'r': ") as refused:
        parse_rule(rule_with(url=url))
    assert says in str(refused.value)
    assert not any(secret in str(refused.value) for secret in SECRETS)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "https://alice:s3cret-pw@hooks.example.com:443/T0/B1?token=x%20y",
     "https://[::1]:65535/", "HTTPS://Hooks.Example.com", "http://localhost:1/"],
)  # fmt: skip
def test_a_good_webhook_url_is_taken_as_it_is(url):
    assert parse_rule(rule_with(url=url)).sinks[0].url == url


@pytest.mark.parametrize(
    ("field", "value", "sink"),
    [("window", "367d", False), ("for", "100000000d", False), ("timeout", "100000d", True),
     ("window", 366 * 86400 + 1, False), ("timeout", float("1e12"), True)],
)  # fmt: skip
def test_durations_past_366_days_are_refused_with_the_bound(field, value, sink):
    data = rule_with(url="http://127.0.0.1:9/") if sink else {"name": "r", "metric": "failed", "threshold": 0}
    if sink:
        data["sinks"][0][field] = value  # type: ignore[index]
    else:
        data[field] = value
    with pytest.raises(ConfigError, match=f"alert 'r': {field} must be at most 366 days"):
        parse_rule(data)


def test_durations_of_366_days_are_taken():
    rule = parse_rule({"name": "r", "metric": "failed", "threshold": 0, "window": "366d", "for": "366d",
                       "sinks": [{"type": "command", "command": "true", "timeout": "366d"}]})  # fmt: skip
    assert rule.window == rule.hold == rule.sinks[0].timeout == MAX_DURATION


def test_a_rule_name_in_the_configuration_and_in_a_rules_file_is_refused(tmp_path):
    configured = parse_rules([{"name": "fails", "metric": "failed", "threshold": 0}])
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- {name: fails, metric: error_rate, threshold: 0.5}\n- {name: other, metric: failed, threshold: 0}\n"
    )
    with pytest.raises(ConfigError, match="two rules are named 'fails'"):
        with_rules_file(configured, str(path))
    assert with_rules_file(configured, None) == configured
    assert [r.name for r in with_rules_file((), str(path))] == ["fails", "other"]
