"""Prometheus exposition of a runtime: the database's view of everything, and this engine's own counters.

Metrics read when scraped (nothing is kept twice), named as Prometheus asks: base units (seconds, bytes,
cores) in the name or the help, counters ending in ``_total``:

- from the database, shared by every process (so exported by one only: ``pepper serve-metrics``, the HTTP
  service's ``/metrics``, or a worker given ``--database-metrics``): ``pepper_tasks{state,task_type}``,
  ``pepper_runs{state}``, ``pepper_dead_letters``, ``pepper_pool_capacity{resource}``,
  ``pepper_pool_free{resource}`` (cpu in cores, memory and storage in bytes, other resources in their own
  units), ``pepper_leases``, ``pepper_workers``;
- from this process's engine, when it runs one (per task type and agent):
  ``pepper_submitted_total``, ``pepper_started_total``, ``pepper_completed_total``,
  ``pepper_failed_total``, ``pepper_retried_total``, ``pepper_parked_total``,
  ``pepper_skipped_total``, the histograms ``pepper_queue_wait_seconds`` and
  ``pepper_run_seconds``, the gauges ``pepper_running{agent}`` (slots taken, held ones included),
  ``pepper_held_slots{agent}``, ``pepper_queued{agent}`` and ``pepper_loop_lag_seconds``.

``serve_metrics`` serves ``/metrics`` on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pepper.core.runtime import Runtime
from pepper.engine.figures import EngineCounters
from pepper.errors import ValidationError
from pepper.model.lease import room

_COUNTERS = {
    "submitted": "Tasks submitted through this engine",
    "started": "Attempts started by this engine",
    "completed": "Attempts that completed on this engine",
    "failed": "Tasks that ended failed on this engine",
    "retried": "Failed attempts answered by retry, reassign or fallback",
    "parked": "Tasks parked in the dead-letter queue",
    "skipped": "Tasks skipped by their recovery policy",
}


#: Resources whose pool is kept in MB, exported in bytes.
_IN_MB = ("memory", "storage")


def _base_unit(resource: str, amount: float) -> float:
    return amount * 2**20 if resource in _IN_MB else amount


class PepperCollector(Collector):
    """Builds the metric families of one runtime when scraped: the database's (``stored``) and this engine's."""

    def __init__(self, runtime: Runtime, *, stored: bool = True) -> None:
        self.runtime = runtime
        self.stored = stored

    def collect(self) -> Iterator[Metric]:
        if self.stored:
            yield from self._stored()
        # copied on the engine's thread, where they change
        counters = self.runtime.read(lambda backend: backend.counters())
        if counters is not None:
            yield from _engine(counters)

    def _stored(self) -> Iterator[Metric]:
        store = self.runtime.store
        now = self.runtime.clock.now()
        tasks = GaugeMetricFamily("pepper_tasks", "Tasks in the database, by state and task type",
                                  labels=["state", "task_type"])  # fmt: skip
        parked = 0
        for state, task_type, n in store.counts_by_state_and_type():
            tasks.add_metric([state, task_type], n)
            parked += n if state == "parked" else 0
        yield tasks
        runs = GaugeMetricFamily("pepper_runs", "Workflow runs in the database, by state", labels=["state"])
        for state, n in store.runs.count_by_state().items():
            runs.add_metric([state], n)
        yield runs
        yield GaugeMetricFamily("pepper_dead_letters", "Tasks parked in the dead-letter queue",
                                value=parked)  # fmt: skip
        capacity = self.runtime.pool()
        leases = self.runtime.read(lambda backend: backend.leases(now))
        free = room(capacity, leases, now)
        cap = GaugeMetricFamily(
            "pepper_pool_capacity",
            "Capacity of the resource pool: cpu in cores, memory and storage in bytes, other resources in their own "
            "units",
            labels=["resource"],
        )
        left = GaugeMetricFamily(
            "pepper_pool_free",
            "Free room in the resource pool, in the units of pepper_pool_capacity",
            labels=["resource"],
        )
        for name in sorted(capacity):
            cap.add_metric([name], _base_unit(name, capacity[name]))
            left.add_metric([name], _base_unit(name, free.get(name, 0.0)))
        yield cap
        yield left
        yield GaugeMetricFamily("pepper_leases", "Live resource leases", value=len(leases))
        yield GaugeMetricFamily("pepper_workers", "Workers (processes running an engine) that have not stopped",
                                value=len(store.workers.live()))  # fmt: skip


def _engine(counters: EngineCounters) -> Iterator[Metric]:
    """The families of this process's engine, from a copy of its counters."""
    for name, help_text in _COUNTERS.items():
        family = CounterMetricFamily(f"pepper_{name}", help_text, labels=["task_type", "agent"])
        for (counter, task_type, agent), n in sorted(counters.counters.items()):
            if counter == name:
                family.add_metric([task_type, agent], n)
        yield family
    for name, help_text, histograms in (
        ("pepper_queue_wait_seconds", "Seconds tasks waited between ready and started", counters.waits),
        ("pepper_run_seconds", "Seconds completed attempts ran", counters.runs),
    ):
        histogram_family = HistogramMetricFamily(name, help_text, labels=["task_type", "agent"])
        for (task_type, agent), (buckets, total) in sorted(histograms.items()):
            histogram_family.add_metric([task_type, agent], buckets, total)
        yield histogram_family
    running = GaugeMetricFamily(
        "pepper_running",
        "Slots taken on each agent of this engine: its running tasks, and its held slots (pepper_held_slots)",
        labels=["agent"],
    )
    held = GaugeMetricFamily(
        "pepper_held_slots",
        "Slots of each agent of this engine held by calls that outlived their attempt (a timeout or cancel a "
        "thread cannot obey) and still run; each is freed when its call returns",
        labels=["agent"],
    )
    queued = GaugeMetricFamily("pepper_queued", "Ready tasks waiting for each agent (shared ones in part)",
                               labels=["agent"])  # fmt: skip
    for agent_id, busy, share, n_held in counters.loads:
        running.add_metric([agent_id], busy)
        held.add_metric([agent_id], n_held)
        queued.add_metric([agent_id], share)
    yield running
    yield held
    yield queued
    yield GaugeMetricFamily("pepper_loop_lag_seconds", "How late the engine's event loop ran a timer (last minute)",
                            value=counters.loop_lag)  # fmt: skip


def registry(runtime: Runtime, *, stored: bool = True) -> CollectorRegistry:
    """A registry holding the runtime's collector (mount it in any Prometheus server); ``stored=False`` leaves
    out the database's figures (another process exports them)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(PepperCollector(runtime, stored=stored))
    return found


def exposition(runtime: Runtime, *, stored: bool = True) -> str:
    """The metrics in Prometheus's text format."""
    return generate_latest(registry(runtime, stored=stored)).decode()


class MetricsServer(ThreadingHTTPServer):
    """The ``/metrics`` server: ``.server_port`` is its port (useful with ``port=0``); ``.close()`` stops it and
    frees the port (also on leaving a ``with`` block)."""

    daemon_threads = True

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(runtime: Runtime, port: int = 9464, host: str = "127.0.0.1", *, stored: bool = True) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` from a background thread until ``.close()`` (``stored=False``: this
    engine's figures only, not the database's)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValidationError(f"port must be a whole number from 0 to 65535 (0: any free port), got {port!r}",
                              field="port")  # fmt: skip
    if not isinstance(host, str) or not host:
        raise ValidationError(f"host must be an address such as '127.0.0.1', got {host!r}", field="host")
    source = registry(runtime, stored=stored)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            body = generate_latest(source)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # what probes send to see that the page is there
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a line each
            return

    server = MetricsServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="pepper-metrics", daemon=True).start()
    return server
