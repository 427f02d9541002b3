"""Tables of docs/STABILITY.md from the runs of Benchmarks/plans/stability-60.yaml and
stability.yaml (plain Python, no torch):

    python3 Benchmarks/stability_summary.py [out/plans/stability-60]     diagnostics per variant
    python3 Benchmarks/stability_summary.py --seeds VARIANT [out/plans/stability]
                                                                    VARIANT over seeds vs bn-prior

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_runs  # noqa: E402


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
    """Per stream, one row per variant (seed 0), bn-prior first."""
    for stream, row in sweep_runs.finished(root).items():
        rows = {}
        for variant, seeds in row.items():
            run = seeds.get(0) or next(iter(seeds.values()))
            rows[variant] = summarise(run.folder, len(run.metrics["classes"]))
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


def seeds_table(root, variant):
    """Per stream: bn-prior, VARIANT for each seed, their mean, the mean and the worst gap
    to bn-prior. The check of the stability issue: no gap below -0.5, mean gap above 0."""
    table = sweep_runs.finished(root)
    seeds = sorted({seed for row in table.values() for seed in row.get(variant, {})})
    print(f"| stream | frames | bn-prior | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | mean gap | worst gap | resets |")
    print("|---|---:|---:|" + "---:|" * len(seeds) + "---:|---:|---:|---:|")
    gaps_all = []
    for stream, row in table.items():
        if "bn-prior" not in row or variant not in row:
            continue
        base_run = next(iter(row["bn-prior"].values()))
        base = base_run.miou
        runs = row[variant]
        done = [runs[s].miou for s in seeds if s in runs]
        resets = [sum(1 for l in load_lines(os.path.join(runs[s].folder, "diagnostics.jsonl")) if l.get("reset"))
                  for s in seeds if s in runs]
        gaps = [v - base for v in done]
        gaps_all.extend(gaps)
        cells = " | ".join(f"{runs[s].miou:.2f}" if s in runs else "-" for s in seeds)
        print(
            f"| {stream} | {base_run.metrics['frames']} | {base:.2f} | {cells} | {statistics.mean(done):.2f} | "
            f"{statistics.mean(gaps):+.2f} | {min(gaps):+.2f} | {'/'.join(map(str, resets))} |"
        )
    if gaps_all:
        print(f"\n{len(gaps_all)} runs: mean gap {statistics.mean(gaps_all):+.2f}, worst {min(gaps_all):+.2f} "
              f"({sum(g < -0.5 for g in gaps_all)} below -0.5)")


def main():
    args = sys.argv[1:]
    if args and args[0] == "--seeds":
        seeds_table(args[2] if len(args) > 2 else "out/plans/stability", args[1])
    else:
        diagnostics_tables(args[0] if args else "out/plans/stability-60")


if __name__ == "__main__":
    main()
