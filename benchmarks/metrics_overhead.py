"""What metrics cost: the throughput workloads with the metrics hook on and off, in the same run.

    .venv/bin/python benchmarks/metrics_overhead.py [--scale 1] [--repeat 5]

Runs W1 (independent tasks) and W2 (a layered DAG) alternately with
``metrics=True`` (the default: counters, histograms and the recent-attempts
window behind PerformanceMonitor, HealthMonitor and /metrics) and
``metrics=False``, and prints the median tasks/s of each and their ratio.
Target: metrics cost at most 10% of throughput.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import run_pepper, timed, w1, w2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="size factor of the workloads (default 1)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each setting; medians are shown (default 5)")
    args = parser.parse_args()
    print(f"{'workload':<9}{'tasks':>7}{'metrics on':>14}{'metrics off':>14}{'on/off':>9}")
    ratios: list[float] = []
    for name, make in (("W1", w1), ("W2", w2)):
        tasks = make(args.scale)
        on, off = [], []
        for _ in range(args.repeat):  # alternated, so drift in the machine's speed hits both alike
            on.append(timed(lambda path, t: run_pepper(path, t, metrics=True), tasks))
            off.append(timed(lambda path, t: run_pepper(path, t, metrics=False), tasks))
        rate_on, rate_off = len(tasks) / statistics.median(on), len(tasks) / statistics.median(off)
        ratios.append(rate_on / rate_off)
        print(f"{name:<9}{len(tasks):>7}{rate_on:>10,.0f} t/s{rate_off:>10,.0f} t/s{rate_on / rate_off:>8.2f}x",
              flush=True)  # fmt: skip
    verdict = "met" if min(ratios) >= 0.90 else "NOT met"
    print(f"\ntarget: on/off >= 0.90 (metrics cost at most 10%): {verdict} (lowest {min(ratios):.3f}x)")


if __name__ == "__main__":
    main()
