"""Wall-time medians shared by the Python benchmark scripts of this folder."""
import time

import torch


def median_ms(body, repeats, warm_up=True, device=None):
    """Median wall time of `repeats` calls of body, in ms, after one untimed call when `warm_up`.
    On a CUDA `device` each call is timed until the GPU has finished its kernels."""
    def wait():
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    if warm_up:
        body()
    times = []
    for _ in range(repeats):
        wait()
        start = time.perf_counter()
        body()
        wait()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]
