"""Alert rules in pepper.toml: workers started from the CLI fire each crossing once, to a real webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import pepper
from pepper.errors import ConfigError
from pepper.model.settings import Settings
from tests.support import WebhookReceiver, eventually, read_rows

PY = sys.executable
SECRET = "not-a-real-secret-42"


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.close()


def _project(tmp_path: Path, url: str) -> dict[str, str]:
    (tmp_path / "pepper.toml").write_text(f"""
[pepper]
db = "pepper.db"
sample_interval = "0.05s"
poll_interval = "0.05s"

[[alerts]]
name = "errors"
metric = "error_rate"
threshold = 0.5
comparison = ">"
window = "1s"
for = "0s"
sinks = [{{ type = "webhook", url = "{url}", secret_env = "PEPPER_TEST_ALERT_SECRET", timeout = "5s" }},
         {{ type = "log" }}]
""")
    (tmp_path / "agents.yaml").write_text(
        "agents:\n"
        '  - agent_id: breaker\n    task_types: [bad]\n    capacity: 4\n    command: "exit 3"\n'
        '  - agent_id: fine\n    task_types: [good]\n    capacity: 4\n    command: "echo 1"\n'
    )
    return {**os.environ, "PEPPER_TEST_ALERT_SECRET": SECRET}


def test_a_crossing_fires_once_across_workers_and_again_only_after_recovering(tmp_path, receiver):
    env = _project(tmp_path, receiver.url)
    env.pop("PEPPER_DB", None)
    # Given two workers started from the CLI, sharing the database and the rule of pepper.toml
    workers = [
        subprocess.Popen(
            [PY, "-m", "pepper", "worker", "--agents", "agents.yaml", "-q"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "client"))
    orchestrator = pepper.TaskOrchestrator(runtime)
    db = str(tmp_path / "pepper.db")
    serial = iter(range(10_000))
    last: dict[str, str] = {}

    def submit(kind: str) -> None:
        """A task of ``kind``, unless the last one is not settled yet: however slow the machine, no backlog of
        one kind builds up to hold the error rate of the window where it was."""
        previous = last.get(kind)
        if previous is None or orchestrator.get_task_status(previous).state.is_settled:
            last[kind] = f"{kind}-{next(serial)}"
            orchestrator.submit_task(last[kind], kind)

    def state() -> tuple[int, int]:
        rows = read_rows(db, "SELECT firing, fired_count FROM alert_states WHERE rule = 'errors'")
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def settled(*task_ids: str) -> bool:
        return all(orchestrator.get_task_status(t).state.is_settled for t in task_ids)

    # Each phase waits for the tasks of the one before to settle: a task of the other kind ending late could
    # otherwise tip the window back (a success right after the second crossing resolves it again at once).
    try:
        # When a failing agent drives the error rate past 0.5
        first = [f"bad-first-{n}" for n in range(3)]
        for task_id in first:
            orchestrator.submit_task(task_id, "bad")
        eventually(lambda: receiver.posts, "the first notification")
        assert state() == (1, 1)
        eventually(lambda: settled(*first), "the first failures to settle")
        # and the rate recovers (successes only in the window): the rule resolves, with no second POST
        eventually(lambda: submit("good") or state() == (0, 1), "the rule to resolve", timeout=60)
        eventually(lambda: settled(last["good"]), "the last success to settle")
        assert state() == (0, 1)  # successes after the resolution keep the rate down
        assert len(receiver.posts) == 1
        # and crosses again
        eventually(lambda: submit("bad") or state() == (1, 2), "the second crossing", timeout=60)
        eventually(lambda: len(receiver.posts) == 2, "the second notification")
    finally:
        runtime.close()
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    # Then exactly two POSTs came, each with the documented body and a valid signature
    assert len(receiver.posts) == 2
    for number, (body, headers) in enumerate(receiver.posts, start=1):
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Pepper-Signature"], expected)
        assert headers["Content-Type"] == "application/json"
        sent = json.loads(body)
        assert sent["rule"] == "errors" and sent["state"] == "firing" and sent["metric"] == "error_rate"
        assert sent["value"] > 0.5 and sent["threshold"] == 0.5 and sent["comparison"] == ">"
        assert sent["window"] == 1.0 and sent["for"] == 0.0 and sent["fired_count"] == number
        assert sent["test"] is False and "error_rate" in sent["message"]
    # and the secret never reached the workers' output
    for worker in workers:
        assert worker.stderr is not None
        assert SECRET not in worker.stderr.read().decode()


def test_pepper_alerts_rules_and_test(tmp_path, receiver):
    env = _project(tmp_path, receiver.url)
    env.pop("PEPPER_DB", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "pepper", *args], cwd=tmp_path, env=env, capture_output=True, text=True)

    listed = run("alerts", "rules", "--json")
    assert listed.returncode == 0, listed.stderr
    (rule,) = json.loads(listed.stdout)
    assert rule["name"] == "errors" and rule["firing"] is False and rule["fired_count"] == 0
    assert run("alerts", "rules").returncode == 0
    tested = run("alerts", "test", "errors")
    assert tested.returncode == 0, tested.stderr
    (body, headers) = receiver.posts[0]
    assert json.loads(body)["test"] is True
    assert headers["X-Pepper-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    unknown = run("alerts", "test", "nope")
    assert unknown.returncode == 2 and "configured rules: errors" in unknown.stderr
    # a rule of pepper.toml named again in a rules file is refused, as `pepper worker --alerts` refuses it
    (tmp_path / "more.yaml").write_text("- {name: errors, metric: failed, threshold: 0, sinks: [log]}\n")
    for args in (("rules",), ("test", "errors")):
        twice = run("alerts", *args, "--alerts", "more.yaml")
        assert twice.returncode == 2 and "two rules are named 'errors'" in twice.stderr, twice.stderr
    assert len(receiver.posts) == 1  # the refused test sent nothing


def test_rules_and_tests_show_a_webhook_by_its_host_only_and_take_db(tmp_path, receiver):
    url = f"{receiver.url}/services/T0/s3cretpath?token=qs3cret"  # a chat hook's URL is its secret
    env = _project(tmp_path, url)
    env.pop("PEPPER_DB", None)
    (tmp_path / "pepper.toml").write_text((tmp_path / "pepper.toml").read_text().replace('db = "pepper.db"\n', ""))
    db = str(tmp_path / "elsewhere.db")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "pepper", *args, "--db", db], cwd=tmp_path, env=env, capture_output=True,
                              text=True)  # fmt: skip

    listed, text, tested = run("alerts", "rules", "--json"), run("alerts", "rules"), run("alerts", "test", "errors")
    for done in (listed, text, tested):
        assert done.returncode == 0, done.stderr
        assert "s3cretpath" not in done.stdout + done.stderr and "qs3cret" not in done.stdout + done.stderr
    port = receiver.url.split(":")[2].split("/")[0]
    shown = f"webhook http://127.0.0.1:{port}/…, signed with $PEPPER_TEST_ALERT_SECRET"
    assert json.loads(listed.stdout)[0]["sinks"] == [shown, "log"]
    assert f"sent: {shown}" in tested.stdout
    assert len(receiver.posts) == 1 and json.loads(receiver.posts[0][0])["test"] is True  # sent to the whole URL


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"name": "x", "metric": "errors_per_day", "threshold": 1}, "valid metrics: error_rate"),
        ({"name": "x", "metric": "error_rate", "threshold": "high"}, "threshold must be a finite number"),
        (
            {"name": "x", "metric": "error_rate", "threshold": 0.5, "sinks": [{"type": "pager"}]},
            "valid sinks: webhook, command, log",
        ),
        ({"name": "x", "metric": "error_rate", "threshold": 0.5, "comparison": "=="}, "comparison must be one of"),
        (
            {"name": "x", "metric": "error_rate", "threshold": 5},
            r"'error_rate' is a share from 0 to 1 .*give one from 0",
        ),
        ({"name": "x", "metric": "error_rate", "threshold": 1}, "never above 1, so the alert could never fire"),
        ({"name": "x", "metric": "cpu_used_percent", "threshold": 120}, "a percentage from 0 to 100"),
        ({"name": "x", "metric": "dead_letters", "threshold": -1, "comparison": ">="}, "0 or more"),
        (
            {"name": "x", "metric": "error_rate", "threshold": 0.5, "sinks": [{"type": "webhook", "url": "ftp://x"}]},
            "ftp://x/ must start with http:// or https://",
        ),
    ],
)
def test_a_bad_rule_is_a_config_error_naming_what_is_valid(rule, says):
    with pytest.raises(ConfigError, match=says):
        Settings.build(alerts=[rule])


def test_a_bad_rule_in_pepper_toml_stops_the_worker_with_exit_2(tmp_path):
    (tmp_path / "pepper.toml").write_text('[[alerts]]\nname = "x"\nmetric = "nope"\nthreshold = 1\n')
    (tmp_path / "agents.yaml").write_text("agents: []\n")
    env = {k: v for k, v in os.environ.items() if k != "PEPPER_DB"}
    done = subprocess.run([PY, "-m", "pepper", "worker", "--agents", "agents.yaml", "--until-idle"], cwd=tmp_path,
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "unknown metric 'nope'" in done.stderr
