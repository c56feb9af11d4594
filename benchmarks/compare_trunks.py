"""The same GLSCL setting on different frozen trunks, compared item by item.

A gallery compares settings on one trunk.  To ask what a better stand-in CLIP gives GLSCL, train the
same setting on each trunk's feature cache (one gallery folder per trunk, e.g.
``glscl-lite gallery ... --set pretrained=runs/pretrain-hybrid-twins2/weights.fp16.pt --settings default``)
and compare the cells here: every trunk against the first on the same test items, with the gallery's
paired bootstrap (:func:`glscl_lite.gallery.summarize_gallery`: test items resampled, seeds averaged;
every-caption metrics resample videos).

    python benchmarks/compare_trunks.py --gallery hybrid=runs/gallery-hybrid twins2=runs/gallery-twins2 \\
        --setting default --seeds 0 1 2 --csv docs/results/pretrain/trunks/glscl_default.csv

Reads the cells' cached per-item outcomes (written when their gallery was scored); refuses cells of
different corpora.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from glscl_lite import runs
from glscl_lite.ablation import cell_name
from glscl_lite.errors import UserError
from glscl_lite.gallery import cell_outcomes, summarize_gallery

SHOWN = ("t2v_R1", "t2v_all_R1", "t2v_all_R5", "moment_R1", "order_acc", "binding_acc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gallery", nargs="+", required=True, metavar="LABEL=DIR",
                    help="gallery folders, the first is the reference")
    ap.add_argument("--setting", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args()
    outcomes, corpora = {}, {}
    for spec in args.gallery:
        label, _, folder = spec.partition("=")
        if not folder:
            raise UserError(f"--gallery {spec!r}: expected LABEL=DIR")
        cells = {}
        for seed in args.seeds:
            run = Path(folder) / "runs" / cell_name(args.setting, seed)
            if runs.read_results(run) is None:
                raise UserError(f"{run}: not a finished cell")
            corpora[str(run)] = str(Path(runs.run_config(run).anno_path).resolve())
            cells[seed] = cell_outcomes(run)
        outcomes[label] = cells
    if len(set(corpora.values())) != 1:
        raise UserError(f"cells of different corpora cannot be paired: {sorted(set(corpora.values()))}")
    first = args.gallery[0].partition("=")[0]
    summary = summarize_gallery(outcomes, default=first, n_boot=args.n_boot)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        summary.to_csv(args.csv, index=False)
    rows = summary[summary.metric.isin(SHOWN)]
    print(f"{args.setting}, seeds {args.seeds}; differences to {first!r} [95 % paired bootstrap]")
    for metric in SHOWN:
        for r in rows[rows.metric == metric].itertuples():
            ci = "" if r.setting == first else f"  {r.diff:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
            print(f"  {metric:<12} {r.setting:<10} {r.mean:6.2f} ± {r.std:.2f}{ci}")


if __name__ == "__main__":
    main()
