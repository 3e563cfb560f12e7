"""The timing helper the benchmarks share."""

import time


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` runs of fn, in seconds, after one warm-up run (which also
    compiles any kernels)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
