"""Wall-time medians shared by the Python benchmark scripts of this folder."""
import time


def median_ms(body, repeats, warm_up=True):
    """Median wall time of `repeats` calls of body, in ms, after one untimed call when `warm_up`."""
    if warm_up:
        body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]
