"""``pepper resources`` (the pool, and each agent's allocation beside its real use) and ``pepper leases``."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.table import Table
from rich.text import Text

import pepper
from pepper.cli.common import db_hint, db_option, json_option, not_empty, open_runtime
from pepper.cli.render import listing_console, make_console, plural, print_json, relative
from pepper.core import ResourceManager
from pepper.core.resources import PoolStatus
from pepper.model.lease import Lease
from pepper.model.resources import describe, describe_amount
from pepper.model.usage import AgentUsage


@click.command()
@json_option
@db_option
def resources(as_json: bool, db: str | None) -> None:
    """Show the resource pool and, per agent, what it was given beside what it really uses."""
    with open_runtime(db) as runtime:
        manager = ResourceManager(runtime)
        pool = manager.pool()
        agents = _agent_ids(runtime, pool.leases)
        usage = {agent_id: manager.get_resource_usage(agent_id) for agent_id in agents}
    if as_json:
        print_json({"pool": pool.to_dict(), "agents": [u.to_dict() for u in usage.values()]})
        return
    console = make_console()
    if not pool.capacity:
        console.print(Text("No resource pool is recorded in this database yet; submitting a task or starting a "
                           "worker records this machine's."))  # fmt: skip
        return
    console.print(_pool_table(pool))
    if usage:
        console.print(_agents_table(list(usage.values())))
    leases = plural(len(pool.leases), "live lease")
    console.print(Text(f"{leases}; `pepper leases{db_hint(db)}` lists them.", style="dim"))


@click.command()
@click.option("--agent", "agent_id", metavar="AGENT_ID", help="Only the leases held by this agent.", callback=not_empty)
@json_option
@db_option
def leases(agent_id: str | None, as_json: bool, db: str | None) -> None:
    """List the live leases: who holds which resources, since when, until when."""
    with open_runtime(db) as runtime:
        live = [lease for lease in ResourceManager(runtime).pool().leases if agent_id in (None, lease.holder)]
    console = listing_console(as_json, live, Lease.to_dict, Text("No live leases."))
    if console is None:
        return
    console.print(_leases_table(live, time.time()))


def _agent_ids(runtime: pepper.Runtime, live: tuple[Lease, ...]) -> list[str]:
    ids = {a.spec.agent_id for a in runtime.store.workers.agents()} | {lease.holder for lease in live}
    return sorted(ids)


def _amount(name: str, amount: float | None) -> str:
    """``2 cores``, ``512 MB``, ``1`` (the amount with its unit, without the name)."""
    return "-" if amount is None else describe_amount(name, amount).split(" ", 1)[1]


def _pool_table(pool: PoolStatus) -> Table:
    table = Table(title=f"Resource pool (host {pool.host})", title_justify="left")
    for column in ("resource", "pool", "capacity", "held", "free"):
        table.add_column(column, justify="left" if column in ("resource", "pool") else "right")
    for name in sorted(pool.capacity):
        table.add_row(name, "shared" if name in pool.shared else "this host", _amount(name, pool.capacity[name]),
                      _amount(name, pool.held.get(name, 0.0)), _amount(name, pool.free.get(name, 0.0)))  # fmt: skip
    return table


def _measured(usage: AgentUsage, metric: str) -> Text:
    figure = usage.measurements.get(metric)
    if figure is None:
        return Text("-")
    if figure.value is None:
        return Text("not measured", style="dim")
    return Text(f"{figure.value:g} {figure.unit}")


def _agents_table(rows: list[Any]) -> Table:
    table = Table(title="Agents: allocated beside measured", title_justify="left")
    for column in ("agent", "budget", "leased by tasks", "cpu", "memory", "storage"):
        table.add_column(column)
    for usage in rows:
        table.add_row(usage.agent_id, describe(usage.allocated), describe(usage.leased_by_tasks),
                      _measured(usage.measured, "cpu"), _measured(usage.measured, "memory"),
                      _measured(usage.measured, "storage"))  # fmt: skip
    notes = {m.reason for u in rows for m in u.measured.measurements.values() if m.reason}
    if notes:
        table.caption = "not measured: " + "; ".join(sorted(notes))
    return table


def _leases_table(live: list[Lease], now: float) -> Table:
    table = Table()
    for column in ("lease", "agent", "kind", "resources", "granted", "expires", "task / worker"):
        table.add_column(column)
    for lease in live:
        expires = relative(lease.expires_at, now) if lease.expires_at is not None else "when released"
        kind = "task in budget" if lease.in_budget else lease.kind.value
        table.add_row(lease.lease_id, lease.holder, kind, describe(lease.resources),
                      relative(lease.granted_at, now), expires, lease.task_id or lease.worker_id or "-")  # fmt: skip
    return table
