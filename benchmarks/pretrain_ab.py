"""Two stand-ins compared frame by frame: zero-shot accuracy, the paired difference and its interval.

Two pretraining runs scored on the same held-out frames are paired observations: a frame that one
model gets right and the other wrong is what a difference is made of.  For every attribute this
prints both accuracies, the difference B - A with a 95 % paired bootstrap interval (frames resampled
with replacement), the discordant counts (A right / B wrong and the reverse) and the exact two-sided
McNemar p-value (binomial test on the discordant frames)::

    python benchmarks/pretrain_ab.py --a runs/pretrain-hybrid-twins2 --b runs/pretrain-hybrid-sets8 \\
        --frames 1000 --json docs/results/pretrain/sets-vs-twins/ab.json

``--a`` / ``--b``: a finished pretraining folder (its ``weights.fp16.pt`` and record), a
``weights.fp16.pt`` file, or ``shipped:MODEL`` (the package's stand-in of that model config).
Frames: ``0 .. --frames-1`` of stream ``eval``, seed ``--seed`` (0: the frames every stand-in's
report uses).  ``--reading``: the zero-shot reading (``ensemble``, the reported protocol, or
``joint``: the attributes of the single best prompt; ``glscl_lite.zeroshot.READINGS``); ``both``
compares under each and writes ``attributes`` (ensemble) and ``attributes_joint``.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from glscl_lite.model.standin import load_standin, shipped_record
from glscl_lite.utils import write_json_atomic
from glscl_lite.zeroshot import ATTRIBUTES, READINGS, zero_shot_predictions


def _load(spec: str):
    """(model, its record) of a run folder, a weights file or ``shipped:MODEL``."""
    weights, model = (None, spec.split(":", 1)[1]) if spec.startswith("shipped:") else (Path(spec), None)
    return load_standin(weights, model), shipped_record(weights, model)


def mcnemar_p(b_only: int, a_only: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test of ``b_only`` among the discordant pairs at 1/2."""
    n = b_only + a_only
    if n == 0:
        return 1.0
    k = min(b_only, a_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(right_a: np.ndarray, right_b: np.ndarray, n_boot: int = 10000, seed: int = 0) -> dict:
    """Accuracies (percent), B - A, its 95 % paired bootstrap interval, discordant counts, McNemar p."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(right_a), size=(n_boot, len(right_a)))
    diff = 100.0 * (right_b[idx].mean(1) - right_a[idx].mean(1))
    lo, hi = np.percentile(diff, [2.5, 97.5])
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    return {"a": round(100.0 * right_a.mean(), 2), "b": round(100.0 * right_b.mean(), 2),
            "diff": round(100.0 * (right_b.mean() - right_a.mean()), 2),
            "ci_low": round(float(lo), 2), "ci_high": round(float(hi), 2),
            "a_right_b_wrong": a_only, "b_right_a_wrong": b_only, "mcnemar_p": round(mcnemar_p(b_only, a_only), 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="baseline: run folder, weights file or shipped:MODEL")
    ap.add_argument("--b", required=True, help="the other: run folder, weights file or shipped:MODEL")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reading", default="ensemble", choices=[*READINGS, "both"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out = {"method": "same held-out frames for both; paired bootstrap over frames (10,000 resamples); exact McNemar",
           "frames": args.frames, "seed": args.seed, "a": args.a, "b": args.b}
    readings = READINGS if args.reading == "both" else (args.reading,)
    right: dict[str, dict[str, dict[str, np.ndarray]]] = {r: {} for r in readings}
    for key, spec in (("a", args.a), ("b", args.b)):
        model, record = _load(spec)
        out[f"{key}_sha256"] = record["sha256"]
        for r in readings:
            preds = zero_shot_predictions(model, args.frames, args.seed, reading=r)
            right[r][key] = {attr: np.array([p == t for p, t in zip(*preds[attr])]) for attr in ATTRIBUTES}
    for r in readings:
        table = out["attributes" if r == "ensemble" else f"attributes_{r}"] = {}
        for attr in ATTRIBUTES:
            table[attr] = row = paired(right[r]["a"][attr], right[r]["b"][attr])
            print(f"{r:<8} {attr:<11} A {row['a']:5.1f}  B {row['b']:5.1f}  B-A {row['diff']:+5.1f} "
                  f"[{row['ci_low']:+.1f}, {row['ci_high']:+.1f}]  discordant {row['a_right_b_wrong']}/"
                  f"{row['b_right_a_wrong']}  McNemar p {row['mcnemar_p']:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.json, out)


if __name__ == "__main__":
    main()
