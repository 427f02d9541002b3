"""Tables of docs/ADAPTATION.md from the runs of Benchmarks/plans/adaptation.yaml (plain Python):

    python3 Benchmarks/adaptation_summary.py [--variants A,B,...] [--check VARIANT] [out/plans/adaptation]

The first table gives mIoU per stream (rows) and variant (columns), the mean over the seeds
that ran (their count in brackets where it is not 1). --check VARIANT adds, per stream, the
acceptance test of the adaptation issue: VARIANT's worst seed against bn-prior (the
stats-prior-0.85 variant) minus 0.5 and against the best other variant's mean minus 1.0,
and its mean gain over bn-prior.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_runs  # noqa: E402


def runs(root):
    """{stream: {variant: {seed: miou}}} of the finished runs."""
    return {
        stream: {variant: {seed: run.miou for seed, run in seeds.items()} for variant, seeds in row.items()}
        for stream, row in sweep_runs.finished(root).items()
    }


def main():
    args = sys.argv[1:]
    chosen, check = None, None
    while args and args[0].startswith("--"):
        flag, value = args.pop(0), args.pop(0)
        if flag == "--variants":
            chosen = value.split(",")
        elif flag == "--check":
            check = value
    root = args[0] if args else "out/plans/adaptation"
    table = runs(root)
    variants = chosen or sorted({v for row in table.values() for v in row})
    print("| stream | " + " | ".join(variants) + " |")
    print("| --- |" + " ---: |" * len(variants))
    for stream, row in table.items():
        cells = []
        for v in variants:
            seeds = row.get(v, {})
            if not seeds:
                cells.append("-")
                continue
            extra = f" ({len(seeds)})" if len(seeds) != 1 else ""
            cells.append(f"{statistics.mean(seeds.values()):.1f}{extra}")
        print(f"| {stream} | " + " | ".join(cells) + " |")
    if not check:
        return
    print(f"\n| stream | bn-prior | best other (variant) | {check}: worst seed / mean | vs bn-prior - 0.5 | vs best - 1.0 |")
    print("| --- | ---: | --- | --- | --- | --- |")
    gains = []
    for stream, row in table.items():
        if check not in row or "stats-prior-0.85" not in row:
            continue
        base = statistics.mean(row["stats-prior-0.85"].values())
        others = {v: statistics.mean(s.values()) for v, s in row.items() if v != check and (not chosen or v in chosen)}
        best = max(others, key=others.get)
        values = list(row[check].values())
        worst, mean = min(values), statistics.mean(values)
        gains.append(mean - base)
        ok_base = "ok" if worst >= base - 0.5 else "FAIL"
        ok_best = "ok" if worst >= others[best] - 1.0 else "FAIL"
        print(f"| {stream} | {base:.1f} | {others[best]:.1f} ({best}) | {worst:.1f} / {mean:.1f} | "
              f"{ok_base} ({worst - base:+.1f}) | {ok_best} ({worst - others[best]:+.1f}) |")
    if gains:
        print(f"\nmean gain over bn-prior: {statistics.mean(gains):+.2f} over {len(gains)} streams")


if __name__ == "__main__":
    main()
