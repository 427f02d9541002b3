"""Where oneDNN's time goes in a run logged with ONEDNN_VERBOSE=1: the summed execution time
of its primitives by kind (convolution forward, input gradient, weight gradient; reorders
between PyTorch's NCHW layout and oneDNN's blocked ones) and by implementation, divided by
the number of steps in the log. For docs/BENCHMARKS.md:

    ONEDNN_VERBOSE=1 .build/release/segttt-bench --child config:NAME --threads 2 --repeats 1 > LOG
    python3 Benchmarks/onednn_summary.py LOG --steps 2

`config:NAME` with `--repeats 1` runs the source forward twice on one view (minibatch 1) and
the OCL step twice on two views (minibatch 2): convolutions are told apart by their
minibatch, and a reorder is counted with the convolution before it in the log (the last
minibatch seen). So the reorders ahead of a step's first convolution count with the
forward passes before it, and are left out of the step's sum.
"""
import argparse
import collections
import re


def summarize(path, steps):
    by_kind = collections.Counter()
    by_implementation = collections.Counter()
    minibatch = "?"
    with open(path) as log:
        for line in log:
            if not line.startswith(("onednn_verbose,exec", "dnnl_verbose,exec")):
                continue
            fields = line.strip().split(",")
            primitive, implementation, propagation = fields[3], fields[4], fields[5]
            problem, milliseconds = fields[-2], float(fields[-1])
            found = re.search(r"mb(\d+)", problem)
            if found:
                minibatch = found.group(1)
            if minibatch != "2":
                continue
            kind = primitive if primitive == "reorder" else f"{primitive} {propagation}"
            by_kind[kind] += milliseconds / steps
            by_implementation[f"{kind} ({implementation})"] += milliseconds / steps
    return by_kind, by_implementation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--steps", type=int, default=2, help="OCL steps in the log (warm-up included)")
    args = parser.parse_args()
    by_kind, by_implementation = summarize(args.log, args.steps)
    print(f"per OCL step (minibatch 2), {args.steps} steps in the log:")
    for name, ms in by_kind.most_common():
        print(f"  {name:40} {ms:9.1f} ms")
    print(f"  {'all':40} {sum(by_kind.values()):9.1f} ms")
    print("by implementation:")
    for name, ms in by_implementation.most_common():
        print(f"  {name:60} {ms:9.1f} ms")


if __name__ == "__main__":
    main()
