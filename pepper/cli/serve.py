"""``pepper serve``: the HTTP API (and, with ``--agents``, a worker) in one process."""

from __future__ import annotations

import ipaddress
import signal
import time
from types import FrameType
from typing import Any

import click
from rich.text import Text

import pepper
from pepper.cli.common import EXIT_INTERRUPTED, db_option, not_empty, open_runtime, start_engine
from pepper.cli.render import make_console
from pepper.errors import PepperError
from pepper.store.location import redact


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but a loopback one needs a token to exist first.")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--agents", "agents_path", metavar="PATH", type=click.Path(), callback=not_empty,
              help="Also run these agents (a YAML file or folder, as for `pepper worker`) here.")  # fmt: skip
@db_option
def serve(host: str, port: int, agents_path: str | None, db: str | None) -> None:
    """Serve pepper's HTTP API on http://HOST:PORT until Ctrl-C (or SIGTERM).

    The API lives under /api/v1 (described at /api/v1/docs); Prometheus
    scrapes /metrics. Every call needs a token (`Authorization: Bearer
    TOKEN`): on the first start, with no token yet, an admin token is made
    and printed once. `pepper token create --scope write --name ci` makes
    others. A non-loopback --host (0.0.0.0...) is refused while no token
    exists. With --agents, this process also runs those agents on queued
    tasks; workflows sent over HTTP may only use agents workers run.
    Stopped with Ctrl-C it exits with 130, with SIGTERM 0.

    \b
    Examples:
      pepper serve
      pepper serve --agents agents.yaml --port 9000
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/v1/tasks
    """
    try:
        from pepper.http.app import create_app
        from pepper.http.server import Server, listen
        from pepper.http.tokens import ensure_first_token, has_tokens
    except ImportError as exc:
        raise PepperError(
            f"pepper serve needs the http extra ({exc.name} is missing): pip install 'pepper[http]'"
        ) from None
    if not host.strip():
        raise click.BadParameter("give an address to listen on: 127.0.0.1 (this machine only) or 0.0.0.0 (every "
                                 "interface)", param_hint="'--host'")  # fmt: skip
    console = make_console()
    with open_runtime(db, create=True) as runtime:
        store = runtime.store
        if not _loopback(host) and not has_tokens(store):
            raise PepperError(
                f"refusing to listen on {host}: no token exists yet, so anyone who reaches it could use the API. "
                "Start on 127.0.0.1 first (an admin token is made and printed), or make one with "
                "`pepper token create --scope admin --name NAME`"
            )
        if agents_path is not None:
            agents = pepper.load_agents(agents_path, runtime=runtime)
            names = ", ".join(a.spec.agent_id for a in agents)
            console.print(Text(f"running {len(agents)} agent{'s' if len(agents) != 1 else ''}: {names}"))
        sock = listen(host, port)  # a first token is made only once nothing can stop it from being shown
        secret = ensure_first_token(store, time.time())
        start_engine(runtime, "server")  # runs are driven here, and the agents (if any) take tasks

        def started(url: str) -> None:
            where = f"serving {url}/api/v1 (docs: {url}/api/v1/docs) on {redact(runtime.settings.db)}"
            console.print(Text(where), soft_wrap=True)
            if secret is not None:
                console.print(Text("an admin token was made; it is shown once, keep it:", style="bold"))
                console.print(Text(secret), soft_wrap=True)
            console.print(Text("Ctrl-C stops", style="dim"))

        server = _by_hand(Server)(create_app(runtime), host, port, on_started=started)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
        if runtime.has_work():
            timeout = runtime.settings.shutdown_timeout
            console.print(Text(f"stopping: letting running tasks finish (up to {timeout:g}s)"))
    console.print(Text("stopped"))
    if server.by_ctrl_c:  # stopped by hand, as every command says with 130; SIGTERM is a clean stop (0)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


def _by_hand(base: Any) -> Any:
    """``base`` (the HTTP server) remembering whether Ctrl-C stopped it (``by_ctrl_c``)."""

    class Serving(base):
        by_ctrl_c = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.by_ctrl_c = self.by_ctrl_c or sig == signal.SIGINT
            super().handle_exit(sig, frame)

    return Serving


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
