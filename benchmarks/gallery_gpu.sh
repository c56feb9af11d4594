#!/usr/bin/env bash
# The ViT-B/32 results gallery (issue 5) in one command on a GPU box:
#   synthetic corpus at MSR-VTT scale (10,000 videos, 298x224) -> 224-px frame cache ->
#   stand-in CLIP trained end to end for $PRETRAIN steps -> ablation grid on its frozen, cached
#   features -> FLOP profile on the GPU -> CSV/JSON/figures in $OUT.
#
#   bash benchmarks/gallery_gpu.sh                       # defaults below; ~20 min on one H100 (estimated)
#   GRID=full SEEDS="0 1 2" bash benchmarks/gallery_gpu.sh   # the whole grid (hours)
#   TINY=1 bash benchmarks/gallery_gpu.sh                # the same pipeline, tiny model on a CPU (dry run)
#
# Re-running skips what is done (corpus, caches, pretraining, finished cells).
set -euo pipefail
cd "$(dirname "$0")/.."

TINY=${TINY:-0}
DATA=${DATA:-data/gallery}
WORK=${WORK:-runs/gallery-gpu}
OUT=${OUT:-docs/results/gpu}
GRID=${GRID:-icl_idl}
SEEDS=${SEEDS:-0 1}
if [ "$TINY" = 1 ]; then
  VIDEOS=${VIDEOS:-120}; SIZE=${SIZE:-160x120}; FRAME_SIZE=64; PRETRAIN=${PRETRAIN:-20}
  DEVICE=cpu; EXTRA=(--set base_encoder=glscl-tiny --set batch_size=16 --set lr=1e-3 --set val_videos=12
                     --set workers=0 --set batch_size_val=64 --set max_steps=${STEPS:-10})
else
  VIDEOS=${VIDEOS:-10000}; SIZE=${SIZE:-298x224}; FRAME_SIZE=224; PRETRAIN=${PRETRAIN:-1000}
  DEVICE=cuda; EXTRA=()
  [ -n "${STEPS:-}" ] && EXTRA=(--set max_steps=$STEPS)
fi
PATHS=(--set anno_path=$DATA --set video_path=$DATA/videos --set frame_cache=$DATA/frames-$FRAME_SIZE)
export HF_HUB_OFFLINE=1
BACKBONE=$([ "$TINY" = 1 ] && echo glscl-tiny || echo ViT-B-32-quickgelu)

[ -f "$DATA/MSRVTT_data.json" ] || glscl-lite synth --out "$DATA" --videos "$VIDEOS" --size "$SIZE" --quiet
[ -f "$DATA/frames-$FRAME_SIZE/index.json" ] || glscl-lite cache frames --anno "$DATA" --videos "$DATA/videos" \
    --out "$DATA/frames-$FRAME_SIZE" --size "$FRAME_SIZE" --quiet
mkdir -p "$OUT"
glscl-lite ablate --config docs/results/gpu_ablation_config.json "${PATHS[@]}" "${EXTRA[@]}" \
    --grid "$GRID" --seeds $SEEDS --pretrain-steps "$PRETRAIN" --out "$WORK" \
    --feature-cache "$WORK/features" --export "$OUT"
glscl-lite profile --backbone "$BACKBONE" --device "$DEVICE" --json "$OUT/profile_${BACKBONE}_${DEVICE}.json" --quiet
python - "$WORK" "$OUT" <<'PY'
import json, sys
from pathlib import Path
import torch
from glscl_lite.runs import read_results
from glscl_lite.utils import machine_name, write_json_atomic
work, out = Path(sys.argv[1]), Path(sys.argv[2])
info = {"machine": machine_name(), "torch": torch.__version__, "grid": json.loads((work / "grid.json").read_text()),
        "pretrain": read_results(work / "pretrain")}
write_json_atomic(out / "gallery_info.json", info)
print(f"gallery written to {out}")
PY
