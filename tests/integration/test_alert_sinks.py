"""Alert sinks for real: a webhook on 127.0.0.1 that fails first, a command reading stdin, a missing secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from pepper.core.alert_rules import send_test
from pepper.engine.alert_sinks import alert_body, send, signature
from pepper.model.alert_config import Sink, parse_rule

RULE = parse_rule({"name": "errors", "metric": "error_rate", "threshold": 0.5, "window": "10s"})
headers: list[dict[str, str]] = []  # of each POST the flaky server took


@pytest.fixture
def flaky_server():
    """Answers 500 to the first POST, 204 afterwards; keeps the bodies (and each POST's headers in ``headers``)."""
    got: list[bytes] = []
    headers.clear()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            headers.append(dict(self.headers))
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(500 if len(got) == 1 else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", got
    server.shutdown()
    server.server_close()


def test_a_webhook_that_fails_is_tried_again_after_a_back_off(flaky_server):
    url, got = flaky_server
    waits: list[float] = []
    body = alert_body(RULE, 0.75, 100.0, 1)
    assert send(Sink("webhook", url=url, retries=2), body, wait=waits.append) is True
    assert len(got) == 2 and waits == [0.5]
    assert json.loads(got[1]) == body


def test_a_webhook_that_keeps_failing_gives_up_after_its_retries(flaky_server):
    waits: list[float] = []
    dead = "http://127.0.0.1:1/"  # nothing listens there
    assert (
        send(Sink("webhook", url=dead, retries=3, timeout=2.0), alert_body(RULE, 1.0, 1.0, 1), wait=waits.append)
        is False
    )
    assert waits == [0.5, 1.0, 2.0]


def test_a_webhook_whose_secret_is_missing_is_not_sent_and_the_log_names_the_variable_only(
    flaky_server, monkeypatch, caplog
):
    url, got = flaky_server
    monkeypatch.delenv("PEPPER_NO_SUCH_SECRET", raising=False)
    with caplog.at_level(logging.ERROR, logger="pepper.alerts"):
        assert send(Sink("webhook", url=url, secret_env="PEPPER_NO_SUCH_SECRET"), alert_body(RULE, 1, 1, 1)) is False
    assert got == [] and "PEPPER_NO_SUCH_SECRET" in caplog.text


def test_a_command_sink_gets_the_alert_on_stdin(tmp_path):
    out = tmp_path / "alert.json"
    command = f"{sys.executable} -c \"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())\""
    body = alert_body(RULE, 0.9, 5.0, 2)
    assert send(Sink("command", command=command), body) is True
    assert json.loads(out.read_text()) == body
    assert send(Sink("command", command="exit 4"), body) is False


def test_the_signature_is_the_hmac_sha256_of_the_body():
    assert signature("key", b"{}") == "sha256=" + hmac.new(b"key", b"{}", hashlib.sha256).hexdigest()


def test_a_failing_webhook_is_logged_by_its_host_and_port_never_its_path_or_query(
    flaky_server, caplog: pytest.LogCaptureFixture
):
    url, got = flaky_server
    secret_url = url + "hooks/T0SECRET?token=abc123"
    waits: list[float] = []
    with caplog.at_level(logging.WARNING, logger="pepper.engine.alert_sinks"):
        assert send(Sink("webhook", url=secret_url, retries=1), alert_body(RULE, 1.0, 1.0, 1), wait=waits.append)
    assert len(got) == 2  # the full URL was used to send: the first try failed, the second went through
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{url}…" in logged  # scheme, host and port
    assert "T0SECRET" not in logged and "abc123" not in logged
    assert Sink("webhook", url=secret_url).shown() == f"webhook {url}…"
    assert Sink("webhook", url="https://me:hunter2@hooks.example.com:8443/x").shown() == (
        "webhook https://hooks.example.com:8443/…"
    )


def test_a_webhook_url_with_a_user_and_password_is_sent_with_basic_authentication(flaky_server, caplog):
    url, got = flaky_server
    sink = Sink("webhook", url=url.replace("http://", "http://alert%40bot:p%3Ass@") + "hook", retries=1)
    with caplog.at_level(logging.WARNING):
        assert send(sink, alert_body(RULE, 1.0, 1.0, 1), wait=lambda _: None)  # the first try fails, the second not
    assert len(got) == 2 and headers[-1]["Authorization"] == "Basic " + base64.b64encode(b"alert@bot:p:ss").decode()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{url}…" in logged
    assert not any(secret in logged for secret in ("alert%40bot", "alert@bot", "p%3Ass", "p:ss"))


@pytest.fixture
def redirecting_server():
    """Answers every request with a redirect to ``/elsewhere`` on a second server, which records what it gets."""
    elsewhere: list[tuple[str, dict[str, str]]] = []
    tries: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            elsewhere.append(("GET", dict(self.headers)))
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            return None

    second = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    target = f"http://localhost:{second.server_address[1]}/elsewhere"

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            tries.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(int(self.path.rpartition("/")[2]))
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (first, second):
        Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://alice:s3cret-pw@127.0.0.1:{first.server_address[1]}", tries, elsewhere
    for server in (first, second):
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_webhook_never_follows_a_redirect_it_is_a_failed_post_tried_again(redirecting_server, status, caplog):
    base, tries, elsewhere = redirecting_server
    waits: list[float] = []
    sink = Sink("webhook", url=f"{base}/hook/{status}", secret_env="PEPPER_TEST_ALERT_SECRET", retries=2)
    with caplog.at_level(logging.WARNING, logger="pepper.alerts"), pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEPPER_TEST_ALERT_SECRET", "k")
        assert send(sink, alert_body(RULE, 1.0, 1.0, 1), wait=waits.append) is False
    # Then each try went to the configured address only, and was taken as failed: retried, then given up
    assert tries == [f"/hook/{status}"] * 3 and waits == [0.5, 1.0]
    assert elsewhere == []  # neither the password nor the signature went anywhere else
    assert f"status {status}, a redirect, which is not followed" in caplog.text
    assert "s3cret-pw" not in caplog.text


def test_a_webhook_whose_url_http_refuses_fails_without_its_secret_in_the_log(caplog):
    # Given a sink made in code (not read from rules, which refuse such a URL) with a space in its secret path
    sink = Sink("webhook", url="http://127.0.0.1:9/hooks/T0 SECRET?token=abc123", retries=3)
    waits: list[float] = []
    with caplog.at_level(logging.WARNING, logger="pepper.alerts"):
        assert send(sink, alert_body(RULE, 1.0, 1.0, 1), wait=waits.append) is False
    # Then it is not tried again (nothing would change), and nothing logged carries the URL's secret parts
    assert waits == []
    assert "http://127.0.0.1:9/…" in caplog.text and "its url is refused" in caplog.text
    assert not any(r.exc_info for r in caplog.records)
    assert "SECRET" not in caplog.text and "abc123" not in caplog.text


def test_a_sink_failing_unexpectedly_is_logged_without_a_traceback_and_the_others_still_get_it(monkeypatch, caplog):
    import pepper.engine.alert_sinks as sinks

    sent: list[str] = []

    def failing(sink: Sink, body: dict[str, object]) -> bool:
        if sink.type == "webhook":
            raise RuntimeError(f"cannot reach {sink.url}")
        sent.append(sink.type)
        return True

    monkeypatch.setattr(sinks, "send", failing)
    webhook = Sink("webhook", url="https://hooks.example.com/T0SECRET?token=abc123")
    with caplog.at_level(logging.ERROR, logger="pepper.alerts"):
        assert sinks.send_all((webhook, Sink("log"), Sink("log")), alert_body(RULE, 1, 1, 1)) == [False, True, True]
    assert sent == ["log", "log"]
    assert "the sink webhook https://hooks.example.com/… failed (RuntimeError)" in caplog.text
    assert not any(r.exc_info for r in caplog.records) and "T0SECRET" not in caplog.text


def test_a_test_notification_reports_two_sinks_that_show_alike_each_on_its_own(flaky_server):
    url, got = flaky_server  # its first POST fails, the second goes through
    rule = parse_rule({"name": "twice", "metric": "failed", "threshold": 0,
                       "sinks": [{"type": "log"}, {"type": "log", "level": "ERROR"},
                                 {"type": "webhook", "url": url + "a", "retries": 0},
                                 {"type": "webhook", "url": url + "b", "retries": 0}]})  # fmt: skip
    shown = f"webhook {url}…"
    assert send_test(rule, 1.0) == {"log (sink 1)": True, "log (sink 2)": True, f"{shown} (sink 3)": False,
                                    f"{shown} (sink 4)": True}  # fmt: skip
    assert len(got) == 2
    assert send_test(parse_rule({"name": "once", "metric": "failed", "threshold": 0}), 1.0) == {"log": True}
