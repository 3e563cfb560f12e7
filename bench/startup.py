"""How long ``numfmt show`` takes from a cold process, beside importing numpy and ml_dtypes.

    python bench/startup.py [--runs 21]

Each command runs in a fresh interpreter (``sys.executable``), its output to a pipe, with
bytecode caches on (``PYTHONDONTWRITEBYTECODE`` is dropped, and one warm-up run writes them).
The time printed is the lower quartile of the runs: the machine's noise only ever adds.
Goal (issue 7): ``numfmt show 3.14 -f bf16`` within 1.5x of ``python -c "import numpy,
ml_dtypes"``, the floor any numfmt command pays.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import numpy, ml_dtypes'": ["-c", "import numpy, ml_dtypes"],
    "numfmt show 3.14 -f bf16": ["-m", "numfmt", "show", "3.14", "-f", "bf16"],
    "numfmt show 3.14 -f bf16 --json": ["-m", "numfmt", "show", "3.14", "-f", "bf16", "--json"],
    "numfmt formats": ["-m", "numfmt", "formats"],
}


def lower_quartile(args: list[str], runs: int, env: dict[str, str]) -> float:
    command = [sys.executable, *args]
    subprocess.run(command, stdout=subprocess.DEVNULL, env=env, check=True)  # caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[runs // 4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base = None
    print(f"{'command':40} {'ms':>8} {'ratio':>7}  goal")
    for label, args in COMMANDS.items():
        t = lower_quartile(args, runs, env)
        base = base or t
        goal = "<= 1.5x" if label == "numfmt show 3.14 -f bf16" else ""
        print(f"{label:40} {t * 1e3:8.1f} {t / base:6.2f}x  {goal}")


if __name__ == "__main__":
    main()
