"""Configured alert rules over one shared SQLite file: `for`, one firing per crossing across keepers, resolving."""

from __future__ import annotations

import json

from pepper.engine.alert_rules import RuleKeeper
from pepper.model.alert_config import parse_rule
from pepper.store.location import open_store


def test_a_rule_fires_after_holding_for_its_time_once_across_keepers_and_again_after_recovering(tmp_path):
    out = tmp_path / "fired.jsonl"
    sink = {"type": "command", "command": f"cat >> {out}; echo >> {out}"}
    rule = parse_rule({"name": "slow", "metric": "queue_wait_p95", "threshold": 5, "for": "10s", "sinks": [sink]})

    def fired() -> list[dict[str, object]]:
        for keeper in keepers:
            for thread in keeper.sent:
                thread.join(30)
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    db = str(tmp_path / "p.db")
    stores = [open_store(db), open_store(db)]
    value = {"now": 9.0}
    keepers = [RuleKeeper(store, (rule,), lambda rule, now: value["now"]) for store in stores]
    try:
        # Given the value past the threshold from t=0: nothing fires before it held for 10s
        for t in (0.0, 5.0, 9.9):
            for keeper in keepers:
                keeper.tick(t)
        assert fired() == []
        # When it has held for 10s, both keepers see it: one notification
        for keeper in keepers:
            keeper.tick(10.0)
            keeper.tick(11.0)
        assert [(b["fired_count"], b["value"]) for b in fired()] == [(1, 9.0)]
        # an unknown value changes nothing
        value["now"] = None  # type: ignore[assignment]
        keepers[0].tick(12.0)
        assert stores[0].alert_states.states()["slow"].firing
        # When it recovers, the rule resolves; when it crosses again and holds, it fires again, once
        value["now"] = 1.0
        keepers[1].tick(20.0)
        assert not stores[0].alert_states.states()["slow"].firing
        value["now"] = 7.0
        for t in (30.0, 40.0, 41.0):
            for keeper in keepers:
                keeper.tick(t)
        assert [b["fired_count"] for b in fired()] == [1, 2]
    finally:
        for store in stores:
            store.close()
