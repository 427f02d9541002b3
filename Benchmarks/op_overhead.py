"""The measurements of Benchmarks/OpOverhead/main.swift, in Python PyTorch.

Run with Debian's python3-torch: /usr/bin/python3 Benchmarks/op_overhead.py
"""
import os
import time

import torch


def median(repeats, iterations, body):
    body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            body()
        times.append((time.perf_counter_ns() - start) / 1e3 / iterations)
    return sorted(times)[len(times) // 2]


def main():
    cores = os.cpu_count()
    a, b = torch.tensor([1.0]), torch.tensor([2.0])
    print(f"tiny_add_us\t{median(7, 20000, lambda: a + b):.2f}")
    print(f"threads_default\t{torch.get_num_threads()}")
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 64, 128, 256, generator=g)
        w = torch.randn(64, 64, 3, 3, generator=g)
        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            t = median(5, 3, lambda: torch.nn.functional.conv2d(x, w, padding=1))
            print(f"conv3x3_threads{threads}_us\t{t:.2f}")


if __name__ == "__main__":
    main()
