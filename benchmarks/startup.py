"""How long ``import pepper`` and ``pepper --help`` take, each in a fresh process.

    .venv/bin/python benchmarks/startup.py [--runs 15]

Prints the median (and fastest) wall time of each over --runs fresh interpreters, beside the same
interpreter doing nothing (``python -c pass``): the part of each figure that is Python's own start.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], runs: int) -> list[float]:
    """Wall times in ms of ``command`` run ``runs`` times, each in a new process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    script = Path(python).with_name("pepper")  # the console script installed beside this interpreter
    cases = {
        "python -c pass": [python, "-c", "pass"],
        "import pepper": [python, "-c", "import pepper"],
        "pepper --help": [str(script), "--help"] if script.exists() else [python, "-m", "pepper", "--help"],
    }
    timed(cases["import pepper"], 2)  # warm the file cache and the bytecode
    print(f"start-up, {args.runs} fresh processes each (ms)")
    print(f"{'':16}{'median':>8}{'fastest':>9}")
    for label, command in cases.items():
        times = timed(command, args.runs)
        print(f"{label:16}{statistics.median(times):8.1f}{min(times):9.1f}")


if __name__ == "__main__":
    main()
