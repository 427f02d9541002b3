"""Tables of docs/STABILITY.md from the runs of Benchmarks/stability.sh (plain Python, no torch):

    python3 Benchmarks/stability_summary.py [out/stability/60]     diagnostics per variant
    python3 Benchmarks/stability_summary.py --seeds VARIANT [out/stability/all]
                                                                    VARIANT over seeds vs bn-prior

Per stream and variant: mIoU, the gap to bn-prior, and from diagnostics.jsonl the mean
prediction entropy over the first and the last fifth of the stream, the share of pixels
predicted as outputs that are no class of the task (the last outputs of the histogram), the
final weight drift ||theta - theta_src|| / ||theta_src||, the median gradient norm of the
first step per frame with its largest parameter group, and the drift monitor's resets.
"""
import json
import os
import re
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


def diagnostics_tables(root):
    for stream in sorted(os.listdir(root)):
        if not os.path.isdir(os.path.join(root, stream)):
            continue
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


def miou(folder):
    path = os.path.join(folder, "metrics.json")
    return json.load(open(path))["miou"] if os.path.exists(path) else None


def seeds_table(root, variant):
    """Per stream: bn-prior, VARIANT for each seed, their mean, the mean and the worst gap
    to bn-prior. The check of the stability issue: no gap below -0.5, mean gap above 0."""
    seeds = set()
    for stream in os.listdir(root):
        for name in os.listdir(os.path.join(root, stream)) if os.path.isdir(os.path.join(root, stream)) else []:
            m = re.fullmatch(re.escape(variant) + r"-seed(\d+)", name)
            if m and miou(os.path.join(root, stream, name)) is not None:
                seeds.add(int(m.group(1)))
    seeds = sorted(seeds)
    print(f"| stream | frames | bn-prior | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | mean gap | worst gap | resets |")
    print("|---|---:|---:|" + "---:|" * len(seeds) + "---:|---:|---:|---:|")
    gaps_all = []
    for stream in sorted(os.listdir(root)):
        folder = os.path.join(root, stream)
        if not os.path.isdir(folder):
            continue
        base = miou(os.path.join(folder, "bn-prior"))
        runs = {s: os.path.join(folder, f"{variant}-seed{s}") for s in seeds}
        values = {s: miou(f) for s, f in runs.items()}
        done = [v for v in values.values() if v is not None]
        if base is None or not done:
            continue
        frames = json.load(open(os.path.join(folder, "bn-prior", "metrics.json")))["frames"]
        resets = [
            sum(1 for l in load_lines(os.path.join(f, "diagnostics.jsonl")) if l.get("reset"))
            for s, f in runs.items() if values[s] is not None
        ]
        gaps = [v - base for v in done]
        gaps_all.extend(gaps)
        cells = " | ".join("-" if values[s] is None else f"{values[s]:.2f}" for s in seeds)
        print(
            f"| {stream} | {frames} | {base:.2f} | {cells} | {statistics.mean(done):.2f} | "
            f"{statistics.mean(gaps):+.2f} | {min(gaps):+.2f} | {'/'.join(map(str, resets))} |"
        )
    if gaps_all:
        print(f"\n{len(gaps_all)} runs: mean gap {statistics.mean(gaps_all):+.2f}, worst {min(gaps_all):+.2f} "
              f"({sum(g < -0.5 for g in gaps_all)} below -0.5)")


def main():
    args = sys.argv[1:]
    if args and args[0] == "--seeds":
        seeds_table(args[2] if len(args) > 2 else "out/stability/all", args[1])
    else:
        diagnostics_tables(args[0] if args else "out/stability/60")


if __name__ == "__main__":
    main()
