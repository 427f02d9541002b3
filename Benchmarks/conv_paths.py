"""Forward + backward time of the convolutions libtorch's CPU build sends to its slow path
(1x1 and 2x2-stride-2 transposed), against the same maths as one matrix product, at ESPNet's
and DeepLab's shapes; the transposed ones also as a 1x1 convolution to O s s channels, which
is what SegTTT runs. Run with Debian's python3-torch:

    /usr/bin/python3 Benchmarks/conv_paths.py [--threads N]

1x1: y[n, o] = sum_c w[o, c] x[n, c]  ->  W [O, C] @ x [N, C, H W].
Transposed, kernel = stride s: y[n, o, s i + a, s j + b] = sum_c x[n, c, i, j] w[c, o, a, b]
->  (w as [C, O s s])^T @ x [N, C, H W], or conv1x1(x, w as [O s s, C, 1, 1]), then the s x s
blocks put in place (pixel shuffle). Each pair is timed interleaved (median of 5 runs, 3
rounds, the middle round reported). OpenBLAS runs at one thread, as in SegTTT's processes
(`Runtime.blasThreads`), unless OPENBLAS_NUM_THREADS says otherwise.
"""
import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read when torch loads OpenBLAS
import torch  # noqa: E402

from timing import median_ms  # noqa: E402
import torch.nn.functional as F


def compare(label, direct, product, names=("conv", "matmul")):
    rounds = sorted((median_ms(direct, 5), median_ms(product, 5)) for _ in range(3))
    a, b = rounds[1]
    print(f"{label:40} {names[0]} {a:8.1f} ms   {names[1]} {b:8.1f} ms   ratio {b / a:.2f}")


def pointwise(n, c, h, w, o):
    x = torch.randn(n, c, h, w, requires_grad=True)
    weight = torch.randn(o, c, 1, 1, requires_grad=True)

    def direct():
        F.conv2d(x, weight).sum().backward()

    def product():
        weight.reshape(o, c).matmul(x.reshape(n, c, h * w)).reshape(n, o, h, w).sum().backward()

    compare(f"1x1 {[n, c, h, w]} -> {o}", direct, product)


def transposed(n, k, h, w):
    x = torch.randn(n, k, h, w, requires_grad=True)
    weight = torch.randn(k, k, 2, 2, requires_grad=True)

    def direct():
        F.conv_transpose2d(x, weight, stride=2).sum().backward()

    def product():
        blocks = weight.reshape(k, k * 4).t().matmul(x.reshape(n, k, h * w))
        F.pixel_shuffle(blocks.reshape(n, k * 4, h, w), 2).sum().backward()

    def pointwise_conv():
        blocks = F.conv2d(x, weight.reshape(k, k * 4).t().reshape(k * 4, k, 1, 1))
        F.pixel_shuffle(blocks, 2).sum().backward()

    compare(f"transposed 2x2/2 {[n, k, h, w]}", direct, product)
    compare(f"transposed 2x2/2 {[n, k, h, w]}", direct, pointwise_conv, names=("conv", "conv1x1"))
    compare(f"transposed 2x2/2 {[n, k, h, w]}", product, pointwise_conv, names=("matmul", "conv1x1"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    torch.set_num_threads(parser.parse_args().threads)
    for shape in [(2, 128, 45, 60, 25), (2, 64, 90, 120, 12), (2, 256, 45, 60, 128), (2, 19, 180, 240, 19),
                  (2, 64, 65, 129, 64), (2, 1024, 33, 65, 256), (2, 2048, 33, 65, 512)]:
        pointwise(*shape)
    for shape in [(2, 20, 45, 60), (2, 20, 90, 120), (2, 20, 180, 240)]:
        transposed(*shape)


if __name__ == "__main__":
    main()
