"""The run page of the dashboard with 1,000 steps, beside a run of one step, in the same Chromium.

    .venv/bin/python benchmarks/dashboard.py [--steps 1000] [--repeat 3]

A real server (``pepper serve``'s app on a SQLite file) runs a workflow whose first step waits at a gate and
whose other steps (in layers, each needing one or two steps of the layer before) are quick. With the first
step running, the run page is opened; then the gate opens and the page is watched, without reloading, until
that step's node turns completed. Measured, the median of ``--repeat`` loads:

- first paint: the browser's first contentful paint of the page (the shell: header and "Loading…");
- drawn: from navigation until the graph and the Gantt chart are in the page;
- live update: from opening the gate until the node shows the step completed (the server's change feed polls
  the store every 0.2 s, so most of this is waiting for the next poll).

Needs Playwright and Chromium (``/usr/bin/chromium``). ``--shot PATH`` saves a screenshot of the big page.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

# run as a script, this file's folder comes first on the path, and benchmarks/http.py would hide the standard
# library's http (which the HTTP server imports)
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper
from pepper.http.app import create_app
from pepper.http.server import ThreadedServer
from pepper.http.tokens import create_token

CHROMIUM = "/usr/bin/chromium"
PATIENCE = 120.0

_WATCH = """(step) => { window.updated = new Promise((resolve) => {
    const rect = document.querySelector(`g[data-step="${step}"] rect`);
    const done = () => rect.getAttribute('class').includes('st-completed');
    if (done()) return resolve(performance.now());
    new MutationObserver((_, observer) => {
        if (done()) { observer.disconnect(); resolve(performance.now()); }
    }).observe(rect, {attributes: true});
}); }"""


def workflow(steps: int, gate: str, rng: random.Random) -> dict:
    """A first step waiting at ``gate``, then ``steps - 1`` quick steps in layers of up to 50."""
    layers: list[list[str]] = [["start"]]
    made = [{"id": "start", "type": "gated", "inputs": {"gate": gate}}]
    while len(made) < steps:
        layer = [f"s{len(made) + i}" for i in range(min(50, steps - len(made)))]
        for step in layer:
            needs = rng.sample(layers[-1], min(len(layers[-1]), rng.randint(1, 2)))
            made.append({"id": step, "type": "echo", "needs": needs})
        layers.append(layer)
    return {"name": f"bench-{steps}", "steps": made}


def measure(page, client, url: str, gates: dict, steps: int, rng: random.Random, shot: Path | None) -> dict:
    gate = f"g{rng.random()}"
    run_id = client.post("/api/v1/runs", json={"workflow": workflow(steps, gate, rng)}).json()["run_id"]
    deadline = time.monotonic() + PATIENCE
    while client.get(f"/api/v1/tasks/{run_id}/start").json()["state"] != "in_progress":
        if time.monotonic() > deadline:
            raise TimeoutError("the first step never started")
        time.sleep(0.05)
    page.goto(f"{url}/runs/{run_id}")
    page.wait_for_selector("svg.dag")
    page.wait_for_selector("#gantt svg")
    drawn = page.evaluate("performance.now()")
    paint = page.evaluate(
        "performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint')?.startTime ?? null"
    )
    page.evaluate(_WATCH, "start")  # window.updated: a promise, resolved when the node turns completed
    opened = page.evaluate("performance.now()")
    gates[gate].set()
    updated = page.evaluate("window.updated")
    if shot is not None:
        page.screenshot(path=str(shot))
    client.get(f"/api/v1/runs/{run_id}", params={"wait": 60})
    return {"first_paint_ms": paint, "drawn_ms": drawn, "live_update_ms": updated - opened}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shot", type=Path, default=None)
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("this benchmark needs Playwright: pip install 'playwright>=1.40'")
    if not Path(CHROMIUM).exists():
        sys.exit(f"this benchmark needs Chromium at {CHROMIUM}: apt-get install chromium")
    import httpx

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        runtime = pepper.Runtime(db=f"{folder}/pepper.db", home=f"{folder}/home", poll_interval="20ms")
        gates: dict[str, threading.Event] = defaultdict(threading.Event)

        @pepper.agent("gated", task_types=["gated"], runtime=runtime)
        def gated(task: pepper.TaskRun) -> object:
            gates[task.inputs["gate"]].wait(PATIENCE)
            return None

        @pepper.agent("echo", task_types=["echo"], capacity=8, runtime=runtime)
        def echo(task: pepper.TaskRun) -> object:
            return None

        runtime.start()
        token = create_token(runtime.store, "bench", "write", time.time())
        server = ThreadedServer(create_app(runtime))
        url = server.start()
        try:
            with (
                sync_playwright() as playwright,
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE) as client,
            ):
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{url}/sign-in")
                page.fill("#token", token)
                page.click("#sign-in button[type=submit]")
                page.wait_for_url(f"{url}/")
                results = {}
                for steps in (1, args.steps):
                    rows = []
                    for i in range(args.repeat):
                        shot = args.shot if steps == args.steps and i == args.repeat - 1 else None
                        rows.append(measure(page, client, url, gates, steps, rng, shot))
                    results[steps] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
                browser.close()
        finally:
            for gate in list(gates.values()):
                gate.set()
            server.stop()
            runtime.close()
    print(f"run page in Chromium, median of {args.repeat}")
    print(f"{'steps':>6}  {'first paint':>12}  {'drawn':>10}  {'live update':>12}")
    for steps, r in results.items():
        print(f"{steps:>6}  {r['first_paint_ms']:>9.0f} ms  {r['drawn_ms']:>7.0f} ms  {r['live_update_ms']:>9.0f} ms")


if __name__ == "__main__":
    main()
