"""Copy a finished stand-in pretraining into the package and document it under docs/results/pretrain/.

    python benchmarks/pretrain_report.py --run runs/pretrain-standin [--docs DIR] [--ship]

Writes ``DIR/{metrics.jsonl, zeroshot.json, settings.json, loss.png}`` (the log, the zero-shot
report, what it was built from, the loss curve; default ``docs/results/pretrain``) and, with
``--ship``, copies the fp16 weights and their record into the package as the stand-in of the run's
model config: ``glscl_lite/model/weights/MODEL.{fp16.pt,json}``.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from glscl_lite.model.standin import shipped_weights  # noqa: E402
from glscl_lite.pretrain import read_log  # noqa: E402
from glscl_lite.provenance import file_sha256  # noqa: E402

DOCS = Path("docs/results/pretrain")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--ship", action="store_true", help="copy the weights into the package")
    ap.add_argument("--docs", type=Path, default=DOCS, help="where the log, report and figure go")
    args = ap.parse_args()
    docs = args.docs
    record = json.loads((args.run / "weights.json").read_text())
    if record["sha256"] != file_sha256(args.run / "weights.fp16.pt")["sha256"]:
        raise SystemExit(f"{args.run}/weights.fp16.pt does not match its record; re-export it")
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.run / "metrics.jsonl", docs / "metrics.jsonl")
    shutil.copy(args.run / "zeroshot.json", docs / "zeroshot.json")
    (docs / "settings.json").write_text(json.dumps({k: record[k] for k in ("settings", "model_config", "provenance",
                                                                          "open_clip", "torch", "steps_done",
                                                                          "cpu_seconds", "sha256")}, indent=2) + "\n")
    log = read_log(args.run)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["step"] for r in log], [r["loss"] for r in log], lw=1)
    ax.set_xlabel("step (batch 256)")
    ax.set_ylabel("CLIP loss")
    ax.set_yscale("log")
    ax.set_title(f"stand-in CLIP pretraining ({record['settings']['model']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(docs / "loss.png", dpi=120)
    if args.ship:
        shipped = shipped_weights(record["settings"]["model"])
        shipped.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.run / "weights.fp16.pt", shipped)
        shutil.copy(args.run / "weights.json", shipped.with_suffix("").with_suffix(".json"))
        print(f"shipped {shipped} (sha256 {record['sha256'][:16]}...)")
    print(json.dumps(record.get("zeroshot", {}).get("zero_shot", {})))


if __name__ == "__main__":
    main()
