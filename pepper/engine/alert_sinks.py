"""Telling people about a configured alert: a webhook, a command, or the log.

The body every sink gets is one JSON document (``alert_body``)::

    {"rule": "errors", "state": "firing", "metric": "error_rate", "value": 0.75, "threshold": 0.5,
     "comparison": ">", "window": 60.0, "for": 0.0, "at": 1767225600.0, "fired_count": 1,
     "message": "error_rate is 0.75, > 0.5 (over 60s)", "description": "", "test": false}

A webhook gets it as the body of an HTTP POST (``Content-Type: application/json``; a ``user:password@`` in
its URL is sent as HTTP basic authentication); with ``secret_env``
the header ``X-Pepper-Signature: sha256=<hex>`` carries the HMAC-SHA256 of the body under the secret
read from that environment variable (the secret is never logged). A failed POST (no answer within
``timeout``, or a status other than 2xx; a redirect is never followed, so the credentials and the signature
go to the configured host only) is tried again ``retries`` times, waiting 0.5 s, 1 s, 2 s...
(``delivery_bound`` is the longest all of that can take).
A command gets the body on stdin (it comes from the operator's configuration only); the log sink
logs the message on the ``pepper.alerts`` logger.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import subprocess
import threading
from base64 import b64encode
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pepper.model.alert_config import ConfiguredRule, Sink, short_url

log = logging.getLogger("pepper.alerts")
SIGNATURE_HEADER = "X-Pepper-Signature"
_BACKOFF = 0.5  # seconds before the first retry; doubles each time


def alert_body(
    rule: ConfiguredRule, value: float, at: float, fired_count: int, *, test: bool = False
) -> dict[str, Any]:
    """The JSON document a firing of ``rule`` sends."""
    message = f"{rule.metric} is {value:g}, {rule.comparison} {rule.threshold:g} (over {rule.window:g}s)"
    if test:  # no figure was read: say when it fires, not that it does
        message = (f"test notification of alert rule {rule.name!r}: it fires when {rule.metric} "
                   f"{rule.comparison} {rule.threshold:g} (over {rule.window:g}s)")  # fmt: skip
    return {"rule": rule.name, "state": "firing", "metric": rule.metric, "value": value,
            "threshold": rule.threshold, "comparison": rule.comparison, "window": rule.window, "for": rule.hold,
            "at": at, "fired_count": fired_count, "message": message, "description": rule.description,
            "test": test}  # fmt: skip


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(sink: Sink, body: dict[str, Any], *, wait: Callable[[float], Any] | None = None) -> bool:
    """Deliver ``body`` to one sink (blocking; retries included); True when it was delivered."""
    data = json.dumps(body, sort_keys=True).encode()
    if sink.type == "webhook":
        return _post(sink, data, wait or threading.Event().wait)
    if sink.type == "command":
        return _run(sink, data, body["rule"])
    log.log(logging.getLevelName(sink.level), "alert %s: %s", body["rule"], body["message"])
    return True


def delivery_bound(sinks: tuple[Sink, ...]) -> float:
    """The longest delivering to ``sinks`` can take (in seconds): every try's timeout and the back-off between."""
    total = 0.0
    for sink in sinks:
        if sink.type == "webhook":
            total += sink.timeout * (sink.retries + 1) + _BACKOFF * (2**sink.retries - 1)
        elif sink.type == "command":
            total += sink.timeout
    return total


def send_all(sinks: tuple[Sink, ...], body: dict[str, Any]) -> list[bool]:
    """Deliver ``body`` to every sink, one after another; whether each one took it, in the order of ``sinks``.
    A sink that fails unexpectedly is logged by what ``Sink.shown`` shows and the kind of error only (no
    traceback: a webhook's URL, which may be its secret, could be in it)."""
    delivered = []
    for sink in sinks:
        try:
            delivered.append(send(sink, body))
        except Exception as exc:  # noqa: BLE001 - one failing sink keeps no other from its notification
            log.error("alert %s: the sink %s failed (%s)", body["rule"], sink.shown(), type(exc).__name__)
            delivered.append(False)
    return delivered


def _post(sink: Sink, data: bytes, wait: Callable[[float], Any]) -> bool:
    import http.client  # only where a webhook is sent: http.client is large
    import urllib.error
    import urllib.request

    assert sink.url is not None
    headers = {"Content-Type": "application/json", "User-Agent": "pepper-alerts"}
    if sink.secret_env:
        secret = os.environ.get(sink.secret_env)
        if secret is None:
            log.error("alert webhook %s: the environment variable %s (its signing secret) is not set; not sent",
                      short_url(sink.url), sink.secret_env)  # fmt: skip
            return False
        headers[SIGNATURE_HEADER] = signature(secret, data)
    url, authorization = _split_credentials(sink.url)
    if authorization is not None:
        headers["Authorization"] = authorization
    delay = _BACKOFF
    where = short_url(sink.url)  # its credentials, path and query stay out of the logs
    opener = urllib.request.build_opener(_no_redirect_handler())
    for attempt in range(sink.retries + 1):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=sink.timeout) as answer:
                if 200 <= answer.status < 300:
                    return True
                why = f"status {answer.status}"
        except urllib.error.HTTPError as exc:
            exc.close()
            why = f"status {exc.code}" + (", a redirect, which is not followed" if 300 <= exc.code < 400 else "")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            why = str(getattr(exc, "reason", exc))
        except (http.client.InvalidURL, ValueError) as exc:  # a URL http refuses: trying again changes nothing
            log.error("alert webhook %s cannot be sent: its url is refused (%s)", where, type(exc).__name__)
            return False
        if attempt < sink.retries:
            log.warning("alert webhook %s failed (%s); trying again in %gs", where, why, delay)
            wait(delay)
            delay *= 2
        else:
            log.error("alert webhook %s failed (%s) after %d tries; giving up", where, why, sink.retries + 1)
    return False


@functools.cache
def _no_redirect_handler() -> type:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        """Follows no redirect: a 3xx answer is a failed POST (its credentials and signature never go to
        another address)."""

        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return NoRedirect


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@`` (urllib would take them for part of the host), and the HTTP basic
    ``Authorization`` they make; None when the URL has none."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host)), "Basic " + b64encode(pair.encode()).decode()


def _run(sink: Sink, data: bytes, rule: str) -> bool:
    assert sink.command is not None
    try:
        done = subprocess.run(["/bin/sh", "-c", sink.command], input=data, capture_output=True,
                              timeout=sink.timeout, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        log.error("alert %s: its command ran longer than %gs and was stopped", rule, sink.timeout)
        return False
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip()[-500:]
        log.error("alert %s: its command exited with status %d: %s", rule, done.returncode, said)
        return False
    return True
