"""Tables of docs/STABILITY.md from the runs of Benchmarks/stability.sh (plain Python, no torch):

    python3 Benchmarks/stability_summary.py [out/stability]

Per stream and variant: mIoU, the gap to bn-prior, and from diagnostics.jsonl the mean
prediction entropy over the first and the last fifth of the stream, the share of pixels
predicted as outputs that are no class of the task (the last outputs of the histogram), the
final weight drift ||theta - theta_src|| / ||theta_src||, the median gradient norm of the
first step per frame with its largest parameter group, and the drift monitor's resets.
"""
import json
import os
import statistics
import sys


def load_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise(folder, task_classes):
    metrics = json.load(open(os.path.join(folder, "metrics.json")))
    lines = load_lines(os.path.join(folder, "diagnostics.jsonl"))
    fifth = max(1, len(lines) // 5)
    entropy_first = statistics.mean(l["entropy"] for l in lines[:fifth])
    entropy_last = statistics.mean(l["entropy"] for l in lines[-fifth:])
    extra_first = statistics.mean(sum(l["histogram"][task_classes:]) for l in lines[:fifth])
    extra_last = statistics.mean(sum(l["histogram"][task_classes:]) for l in lines[-fifth:])
    grads = [sum(v * v for v in l["gradient_norms"].values()) ** 0.5 for l in lines if l["gradient_norms"]]
    top = ""
    if grads:
        totals = {}
        for l in lines:
            for k, v in l["gradient_norms"].items():
                totals[k] = totals.get(k, 0) + v * v
        top = max(totals, key=totals.get)
    return {
        "miou": metrics["miou"],
        "entropy": (entropy_first, entropy_last),
        "extra": (extra_first, extra_last),
        "drift": lines[-1]["drift"],
        "grad": statistics.median(grads) if grads else None,
        "top": top,
        "frames": metrics["frames"],
        "resets": sum(1 for l in lines if l.get("reset")),
    }


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "out/stability"
    for stream in sorted(os.listdir(root)):
        rows = {}
        for variant in sorted(os.listdir(os.path.join(root, stream))):
            folder = os.path.join(root, stream, variant)
            if not os.path.exists(os.path.join(folder, "metrics.json")):
                continue
            classes = len(json.load(open(os.path.join(folder, "metrics.json")))["classes"])
            rows[variant] = summarise(folder, classes)
        if not rows:
            continue
        base = rows.get("bn-prior", {}).get("miou")
        print(f"\n### {stream} ({next(iter(rows.values()))['frames']} frames)\n")
        print("| variant | mIoU | vs bn-prior | entropy first -> last | non-task share first -> last | drift | grad norm (median) | largest group | resets |")
        print("|---|---:|---:|---|---|---:|---:|---|---:|")
        for variant, r in sorted(rows.items(), key=lambda kv: (kv[0] != "bn-prior", kv[0])):
            gap = "" if base is None else f"{r['miou'] - base:+.1f}"
            grad = "" if r["grad"] is None else f"{r['grad']:.3g}"
            print(
                f"| {variant} | {r['miou']:.1f} | {gap} | {r['entropy'][0]:.3f} -> {r['entropy'][1]:.3f} | "
                f"{100 * r['extra'][0]:.1f}% -> {100 * r['extra'][1]:.1f}% | {r['drift']:.2e} | {grad} | {r['top']} | "
                f"{r['resets']} |"
            )


if __name__ == "__main__":
    main()
