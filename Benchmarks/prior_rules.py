#!/usr/bin/env python3
"""Scores label-free rules that choose a BatchNorm prior, on the files prior-probe writes.

    python3 Benchmarks/prior_rules.py [--rule NAME:KAPPA:LAMBDA[:all][:delta=D] ...] out/probe/*.jsonl

Every file is one stream: per frame and per prior, the BatchNorm layers' input shifts, the
prediction's label-free statistics and the frame's confusion matrix (Benchmarks/PriorProbe).
A rule sees, at frame t, only what the frames up to t gave (every prior measured on every
frame, where bn-select measures one in turn; moving averages with momentum 0.1), chooses a
prior, and the frame's confusion matrix under that prior is added to the stream's. The table
gives each fixed prior's mIoU, then bn-select's rule with the features alone, with its
default checks (kappa 0.4, lambda 0.2, delta 0.02) and with each --rule's, and each one's
gap to the best fixed prior.
"""
import json
import sys
from pathlib import Path

import numpy as np


def load(path):
    frames = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    priors = frames[0]["priors"]
    classes, columns = frames[0]["classes"], frames[0]["columns"]
    conf = np.array([[np.array(c).reshape(classes, columns)[:, :classes] for c in f["confusion"]] for f in frames])
    shifts = np.array([f["shifts"] for f in frames])  # frames x priors x layers
    stats = {k: np.array([f[k] for f in frames]) for k in ("entropy", "confidence", "logsumexp")}
    marginal = np.array([f["marginal"] for f in frames])  # frames x priors x outputs
    agreement = np.array([f["agreement"] for f in frames])  # frames x priors x priors
    return dict(priors=np.array(priors), conf=conf, shifts=shifts, marginal=marginal, agreement=agreement, **stats)


def miou(matrix):
    inter = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - inter
    present = matrix.sum(1) > 0
    return 100 * np.mean(inter[present] / np.maximum(union[present], 1))


def ema(values, momentum=0.1):
    """Moving average along the first axis (frames), the first frame taken as it is."""
    out = np.empty_like(values, dtype=float)
    out[0] = values[0]
    for t in range(1, len(values)):
        out[t] = (1 - momentum) * out[t - 1] + momentum * values[t]
    return out


def simulate(stream, choose):
    """mIoU of choosing, frame by frame, the prior `choose(t)` returns (an index)."""
    total = np.zeros_like(stream["conf"][0, 0])
    picks = []
    for t in range(len(stream["conf"])):
        k = choose(t)
        picks.append(stream["priors"][k])
        total += stream["conf"][t, k]
    return miou(total), picks


def tolerance_rule(score, priors, tau):
    """The largest prior whose stream score is within S_0 (1 + tau p), S_0 that of the smallest
    candidate (bn-select's rule); candidates sorted from most source to least."""
    order = np.argsort(-priors)

    def choose(t):
        s = score[t]
        floor = s[order[-1]]
        for k in order:
            if s[k] <= floor * (1 + tau * priors[k]):
                return k
        return order[-1]

    return choose


def checked_rule(stream, candidates, tau=1.25, kappa=0.4, lam=0.2, delta=0.02, momentum=0.1, below=True):
    """bn-select's rule (Sources/SegTTT/Adaptation/Methods/PriorSelection.swift): the shift
    rule's prior, then the largest prior whose predictions carry at least 1 - delta times its
    information I_p = H(M_p) - H_p (delta 0: the rule before the margin); then, while the
    prior's H_p exceeds (1 + kappa p) times the lowest of
    the smaller candidates' or its I_p is below (1 - lam) times their highest, the next smaller
    prior (below=False: the lowest and highest of all candidates, the rule up to 2026-12-07).
    kappa or lam None leaves that check out; both None is the shift rule alone."""
    priors = stream["priors"][candidates]
    order = list(np.argsort(-priors))
    shift = ema(stream["shifts"].mean(2)[:, candidates], momentum)
    marginal = ema(stream["marginal"][:, candidates], momentum)
    entropy = ema(stream["entropy"][:, candidates], momentum)
    info = -(marginal * np.log(np.maximum(marginal, 1e-12))).sum(2) - entropy
    shift_choice = tolerance_rule(shift, priors, tau)

    def choose(t):
        k = shift_choice(t)
        if lam is None:
            return k
        k = max([j for j in order if info[t, j] >= (1 - delta) * info[t, k]] + [k], key=lambda j: priors[j])

        def gives_way(j):
            others = [i for i in order if priors[i] < priors[j]] if below else order
            return (kappa is not None and entropy[t, j] > (1 + kappa * priors[j]) * entropy[t, others].min()) or info[
                t, j] < (1 - lam) * info[t, others].max()

        while order.index(k) + 1 < len(order) and gives_way(k):
            k = order[order.index(k) + 1]
        return k

    return choose


def main():
    args = sys.argv[1:]
    variants = {"features only": dict(kappa=None, lam=None), "bn-select": {}}
    while args and args[0] == "--rule":
        # --rule NAME:KAPPA:LAMBDA[:all][:delta=D] adds a variant ("none" leaves a check out;
        # "all" compares a prior's predictions with every candidate's, not the smaller ones'
        # only; D: the information step's tolerance)
        name, kappa, lam, *rest = args[1].split(":")
        value = lambda v: None if v == "none" else float(v)  # noqa: E731
        variants[name] = dict(kappa=value(kappa), lam=value(lam), below="all" not in rest)
        variants[name].update(("delta", float(r[len("delta="):])) for r in rest if r.startswith("delta="))
        args = args[2:]
    table = []
    for path in args:
        s = load(path)
        priors = s["priors"]
        candidates = [k for k, p in enumerate(priors) if p <= 0.85]
        sub = dict(priors=priors[candidates], conf=s["conf"][:, candidates])
        row = {"stream": Path(path).stem, "fixed": {p: miou(s["conf"][:, k].sum(0)) for k, p in enumerate(priors)}}
        for name, settings in variants.items():
            row[name] = simulate(sub, checked_rule(s, candidates, **settings))
        table.append(row)
    ps = sorted(table[0]["fixed"], reverse=True)
    print("| stream | " + " | ".join(f"p = {p:g}" for p in ps) + " | " + " | ".join(variants) + " |")
    print("| --- |" + " ---: |" * (len(ps) + len(variants)))
    for row in table:
        best = max(row["fixed"].values())
        cells = [f"{row['fixed'][p]:.1f}" for p in ps]
        cells += [f"{row[k][0]:.1f} ({row[k][0] - best:+.1f})" for k in variants]
        print(f"| {row['stream']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
