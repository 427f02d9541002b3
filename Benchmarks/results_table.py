"""docs/RESULTS.md from the runs of Benchmarks/plans/results.yaml (plain Python):

    python3 Benchmarks/results_table.py [out/plans/results] [--output docs/RESULTS.md]

Three tables: every method at its published settings on the seven real streams, the same
methods on the continual schedule played in rounds (the mIoU of each round from
metrics.json), and OCL's sensitivity on the dusk stream. Cells whose run has not finished
read "pending"; seconds per frame are the runs' own wall times (one thread each).
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_runs  # noqa: E402

STREAMS = {
    "cs2camvid-dusk": "Cityscapes -> CamVid, dusk",
    "cs2camvid-day": "Cityscapes -> CamVid, day",
    "cs2camvid-all": "Cityscapes -> CamVid, all",
    "camvid-noise1": "CamVid + gaussian_noise:1",
    "camvid-noise3": "CamVid + gaussian_noise:3",
    "camvid-contrast1": "CamVid + contrast:1",
    "camvid-contrast3": "CamVid + contrast:3",
}
PUBLISHED = ["source", "source-flip", "bn-prior", "bn-alpha", "bn-ema", "tent", "ocl", "cotta", "pl-reset", "diga"]
ROUNDS_STREAM = "camvid-dusk-schedule-3rounds"
LEARNING_RATES = {"ocl-lr-1e-05": "lr 1e-05", "ocl-lr-0.0001": "lr 0.0001", "ocl-lr-0.001": "lr 0.001"}
PRIORS = {"ocl-prior-0.7": "prior 0.7", "ocl-prior-0.95": "prior 0.95"}


def table(runs, streams, columns):
    """Rows of streams, columns of variants (name -> heading), then the mean seconds per frame."""
    lines = ["| stream | " + " | ".join(columns.values()) + " |", "| --- |" + " ---: |" * len(columns)]
    seconds = {}
    for stream in streams:
        cells = []
        for variant in columns:
            run = runs.get(stream, {}).get(variant, {}).get(0)
            if run is None:
                cells.append("pending")
                continue
            cells.append(f"{run.miou:.1f}")
            seconds.setdefault(variant, []).append(run.metrics["seconds_per_frame"])
        lines.append(f"| {STREAMS[stream]} | " + " | ".join(cells) + " |")
    per_frame = [f"{statistics.mean(seconds[v]):.2f}" if v in seconds else "pending" for v in columns]
    return lines + ["| seconds per frame | " + " | ".join(per_frame) + " |", ""]


def rounds_table(runs):
    methods = [m for m in PUBLISHED if m != "source-flip"]
    done = [runs.get(ROUNDS_STREAM, {}).get(m, {}).get(0) for m in methods]
    count = max((len(r.metrics.get("rounds") or []) for r in done if r), default=3)
    lines = [
        "| method | " + " | ".join(f"round {n}" for n in range(1, count + 1)) + " | all rounds | seconds per frame |",
        "| --- |" + " ---: |" * (count + 2),
    ]
    for method, run in zip(methods, done):
        if run is None:
            cells = ["pending"] * (count + 2)
        else:
            cells = [f"{r['miou']:.1f}" for r in run.metrics["rounds"]]
            cells += [f"{run.miou:.1f}", f"{run.metrics['seconds_per_frame']:.2f}"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines + [""]


def main():
    args = sys.argv[1:]
    output = "docs/RESULTS.md"
    if "--output" in args:
        at = args.index("--output")
        output = args[at + 1]
        del args[at:at + 2]
    root = args[0] if args else "out/plans/results"
    runs = sweep_runs.finished(root)
    times = [os.path.getmtime(os.path.join(r.folder, "metrics.json")) for row in runs.values() for v in row.values() for r in v.values()]
    span = " to ".join(sorted({time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (min(times), max(times))})) if times else "-"
    lines = [
        "# Results", "",
        "Mean IoU (%) over each whole stream (one confusion matrix per stream), ESPNet checkpoints",
        "from `../shared/data`, CamVid test split at 480x360. Produced by", "",
        "    segttt sweep Benchmarks/plans/results.yaml --local -j 2",
        "    python3 Benchmarks/results_table.py out/plans/results", "",
        "Full streams: 233 frames (all), 171 (day), 62 (dusk). Every run is a `segttt adapt` with",
        "its method's published settings (`--preset published`), seed 0 for the corruptions and the",
        "methods, one libtorch thread, IEEE arithmetic; the streams are those of",
        "Benchmarks/plans/streams.yaml. Cityscapes -> CamVid maps the 19 Cityscapes classes to",
        "CamVid's 11 and counts the background output as unmapped (shared/MODELS.md). Seconds per",
        "frame are the runs' wall times of predicting and adapting, for orientation only (speed is",
        "measured by the benchmarks). `segttt adapt` starts from the recommended preset; its",
        "figures on these streams and others are in docs/STABILITY.md and docs/ADAPTATION.md.",
        f"The runs in this file finished on {span} (UTC). Cells marked pending have not finished:",
        "the sweep command resumes them.", "",
        "### Published defaults", "",
    ]
    lines += table(runs, list(STREAMS), {v: v for v in PUBLISHED})
    lines += [
        "### A continual schedule in rounds: CamVid dusk, gaussian_noise:3@20,contrast:3@21,fog:3@21, 3 rounds "
        "(186 frames, the CamVid checkpoint, no reset between rounds)", "",
    ]
    lines += rounds_table(runs)
    lines += ["### OCL sensitivity: learning rate (prior 0.85; lr 2e-5 is the ocl column above)", ""]
    lines += table(runs, ["cs2camvid-dusk"], LEARNING_RATES)
    lines += ["### OCL sensitivity: BN prior (lr 2e-5; prior 0.85 is the ocl column above)", ""]
    lines += table(runs, ["cs2camvid-dusk"], PRIORS)
    with open(output, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
