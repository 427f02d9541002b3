"""The runs of a `segttt sweep` output root, as the summary scripts of this folder read them
(plain Python): ROOT/sweep.json lists every run of the plan with its stream, variant, seed
and folder; a run has finished when its folder holds metrics.json."""
import json
import os
import sys


class Run:
    def __init__(self, root, record):
        self.index = record["index"]
        self.stream = record["stream"]
        self.variant = record["variant"]
        self.seed = record["seed"]
        self.folder = os.path.join(root, record["folder"])
        path = os.path.join(self.folder, "metrics.json")
        self.metrics = json.load(open(path)) if os.path.exists(path) else None

    @property
    def miou(self):
        return None if self.metrics is None else self.metrics["miou"]


def read(root):
    """Every run of the sweep in ROOT, in the plan's order (finished or not)."""
    manifest = os.path.join(root, "sweep.json")
    if not os.path.exists(manifest):
        sys.exit(f"{manifest}: no such file; give a plan's output folder (`segttt sweep PLAN --list` writes it)")
    return [Run(root, record) for record in json.load(open(manifest))["runs"]]


def finished(root):
    """{stream: {variant: {seed: Run}}} of the runs that finished."""
    table = {}
    for run in read(root):
        if run.metrics is not None:
            table.setdefault(run.stream, {}).setdefault(run.variant, {})[run.seed] = run
    return table
