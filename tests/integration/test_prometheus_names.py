"""The Prometheus exposition: base units, `_total` counters, and the database's figures exported on request."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

import pepper
from pepper.core.prometheus import exposition


def _families(text: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_names_follow_prometheus_conventions_and_the_pool_is_in_base_units(tmp_path):
    runtime = pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), resources={"memory": 512})
    try:

        @pepper.agent("echo", task_types=["echo"], runtime=runtime)
        def echo(task: pepper.TaskRun) -> object:
            return 1

        orchestrator = pepper.TaskOrchestrator(runtime)
        orchestrator.submit_task("e1", "echo")
        orchestrator.wait("e1", timeout=20)
        text = exposition(runtime)
        engine_only = exposition(runtime, stored=False)
    finally:
        runtime.close()
    # counters end in _total; durations are in seconds; nothing in milliseconds or megabytes
    samples = re.findall(r"^(pepper_\w+)", text, flags=re.MULTILINE)
    assert "pepper_completed_total" in samples and "pepper_submitted_total" in samples
    assert not [name for name in samples if re.search(r"_(ms|mb|milliseconds|megabytes)\b", name)]
    families = _families(text)
    for family in families.values():
        if family.type == "counter":  # type: ignore[attr-defined]
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)  # type: ignore[attr-defined]
    assert "pepper_run_seconds" in families and "pepper_queue_wait_seconds" in families
    pool = {s.labels["resource"]: s.value for s in families["pepper_pool_capacity"].samples}  # type: ignore[attr-defined]
    assert pool["memory"] == 512 * 2**20  # bytes
    # the database's figures only where asked for: a worker exports its own counters
    assert "pepper_tasks" in families and "pepper_workers" in families
    mine = _families(engine_only)
    assert "pepper_tasks" not in mine and "pepper_workers" not in mine and "pepper_pool_capacity" not in mine
    assert "pepper_completed" in mine
