#!/usr/bin/env bash
# Every GPU measurement of issue 14 in ONE run on a lent H200, within a device-time budget.
# How to run it with the device tool, and what comes back: benchmarks/GPU_PLAN.md.
#
#   (here, once)  bash benchmarks/gpu_wheels.sh           # wheels into .whl/gpu (ignored, 49.5 MiB)
#   (device)      run(command="bash benchmarks/gpu_session.sh", carry=[".whl/gpu"], timeout_s=540)
#   (here)        TINY=1 OMP_NUM_THREADS=1 nice -n 10 bash benchmarks/gpu_session.sh   # CPU dry run
#
# Steps, in priority order, each under its own time cap (seconds; H200 estimates from the H100
# figures in benchmarks/results/gpu_nvidia_h100.json), all inside BUDGET (default 450 s of script
# time; the machine's start, ~1-2 min, comes on top: ~8 min of the 15 min of device time):
#   install  wheels from .whl/gpu into /tmp/site                       est  15  cap  60
#   latency  per-query latency, 6 heads x 1k/10k/100k, ViT-B/32 sizes  est  35  cap  75
#   corpus   10k synthetic videos at 160x120 + 224-px frame cache      est  90  cap 150
#   eval     1k x 1k evaluation, encoding included (+ head only)       est  20  cap  45
#   train_eager     30 steps, batch 128, bf16, from the frame cache    est  35  cap  60
#   train_compiled  40 steps, torch.compile                            est 110  cap 150
#   features feature cache of 10k videos + 400 steps of the 5 x 170k-pair schedule, 5 epochs
#            extrapolated from the measured step time (flagged)        est  80  cap 120
#   gallery  benchmarks/gallery_gpu.sh, shortened, with what is left   cap GALLERY_CAP (120)
# A step never starts with less than its minimum left; each writes its JSON only when complete.
# Results: benchmarks/results/{gpu,latency}_<machine_slug>.json, copied with the log, the gallery
# export (tar) and session_summary.json to $OUT (the device tool's folder that comes back).
# Exit status: 0 only when every measurement is present with its keys (gpu_session_report.py);
# the gallery is reported (complete / INCOMPLETE) but does not fail the run.
# RESUME=1 (default) skips phases already in the results JSON (a second lease after a partial run:
# copy the first run's JSON files into benchmarks/results first).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
START=$(date +%s)
TINY=${TINY:-0}
RESUME=${RESUME:-1}
RESERVE=${RESERVE:-15}          # seconds kept for the report and the copy to $OUT
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

if [ "$TINY" = 1 ]; then        # CPU dry run: tiny model, 64 px, few steps, small galleries, no install
  BUDGET=${BUDGET:-1500}        # wall seconds on a shared 2-core box (the CPU work is ~2-3 min)
  WORK=${WORK:-$REPO/runs/gpu-session-tiny}
  RESULTS=$WORK/results; DEVOUT=$WORK/out
  DEVICE=cpu; PY=${PY:-$REPO/.venv/bin/python}
  VIDEOS=80; SYNTH=160x120; LAT_SIZES="100 1000"; LAT_BACKBONE=glscl-tiny; LAT_REPEATS=1; LAT_GB=1; LAT_THREADS=1
  BENCH=(--tiny --device cpu --videos 80 --batch 8 --steps 20 --compile-steps 20 --workers 0 --cpu-workers 1
         --feature-steps 20 --no-official-loop)
  GALLERY_ENV=(TINY=1 PRETRAIN=4 STEPS=6 SEEDS=0 GRID=${GRID:-icl_idl})
  GALLERY_CAP=${GALLERY_CAP:-60}; CAP_SCALE=${CAP_SCALE:-4}   # caps x4: a shared, loaded CPU
  export TORCHDYNAMO_DISABLE=1  # train_compiled: the plumbing only (inductor on 2 cores takes minutes)
else
  BUDGET=${BUDGET:-450}
  WORK=${WORK:-/tmp/glscl}
  RESULTS=$REPO/benchmarks/results; DEVOUT=${OUT:?run through the device tool (its \$OUT comes back)}
  DEVICE=cuda; PY=${PY:-python3}
  VIDEOS=10000; SYNTH=160x120; LAT_SIZES="1000 10000 100000"; LAT_BACKBONE=ViT-B-32-quickgelu; LAT_REPEATS=5
  LAT_GB=40; LAT_THREADS=8   # threads: the CPU-side FLOP count (fvcore) of the 6 heads; timing is on the GPU
  BENCH=(--device cuda --videos 10000 --batch 128 --steps 30 --compile-steps 40 --workers 12 --cpu-workers 16
         --feature-steps 400 --no-official-loop)
  GALLERY_ENV=(PRETRAIN=${PRETRAIN:-100} STEPS=${STEPS:-300} SEEDS=0 GRID=${GRID:-icl_idl})
  GALLERY_CAP=${GALLERY_CAP:-120}; CAP_SCALE=1
fi
CORPUS=$WORK/corpus
mkdir -p "$WORK" "$RESULTS" "$DEVOUT"
LOG=$DEVOUT/session.log
STATUS=$WORK/steps.txt
: > "$STATUS"
say() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# step NAME CAP MIN CMD...: run CMD under min(CAP, time left) seconds; record ok / FAILED / TIMEOUT / skipped
step() {
  local name=$1 cap=$(( $2 * CAP_SCALE )) min=$3; shift 3
  local left=$(( START + BUDGET - RESERVE - $(date +%s) ))
  local t=$(( cap < left ? cap : left ))
  if (( t < min )); then
    say "!! $name: SKIPPED, ${left}s left of the budget (needs ${min}s)"; echo "$name skipped 0" >> "$STATUS"; return 0
  fi
  say "== $name (cap ${t}s)"
  local t0 rc
  t0=$(date +%s)
  set +e
  timeout -k 10 "$t" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  set -e
  local dt=$(( $(date +%s) - t0 )) st=ok
  (( rc == 124 || rc == 137 )) && st=TIMEOUT
  (( rc != 0 && rc != 124 && rc != 137 )) && st=FAILED
  echo "$name $st $dt" >> "$STATUS"
  say "-- $name: $st (rc $rc) in ${dt}s"
  return 0
}
ok() { grep -q "^$1 ok " "$STATUS"; }
# phase_done FILE KEY: the results JSON already holds KEY (RESUME=1)
phase_done() { [ "$RESUME" = 1 ] && [ -f "$1" ] && "$PY" -c "import json,sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1])) else 1)" "$1" "$2"; }

# ---- install (device only): wheels carried in .whl/gpu; a glscl-lite command for gallery_gpu.sh
if [ "$TINY" != 1 ]; then
  ls .whl/gpu/*.whl >/dev/null 2>&1 || { say "!! .whl/gpu is empty: run benchmarks/gpu_wheels.sh here and carry .whl/gpu"; exit 2; }
  step install 60 5 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/gpu/*.whl
  ok install || { say "!! install failed: nothing can run"; exit 2; }
  export PYTHONPATH=/tmp/site:$REPO${PYTHONPATH:+:$PYTHONPATH}
  mkdir -p /tmp/bin
  printf '#!/bin/sh\nexec %s -m glscl_lite "$@"\n' "$PY" > /tmp/bin/glscl-lite && chmod +x /tmp/bin/glscl-lite
  export PATH=/tmp/bin:$PATH
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 | tee -a "$LOG" || true
else
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
  PATH=$(dirname "$PY"):$PATH
fi
"$PY" -c "import torch, open_clip, decord, av, fvcore; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    2>&1 | tee -a "$LOG"
[ "$DEVICE" = cpu ] || "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'"
SLUG=$("$PY" -c "from glscl_lite.utils import machine_slug; print(machine_slug())")
GPU_JSON=$RESULTS/gpu_$SLUG.json
LAT_JSON=$RESULTS/latency_$SLUG.json
say "machine $SLUG -> $GPU_JSON, $LAT_JSON"

# ---- per-head query latency (no corpus needed)
if [ "$RESUME" = 1 ] && [ -f "$LAT_JSON" ] && grep -q "\"device\": \"$DEVICE" "$LAT_JSON"; then
  say "latency: done earlier ($LAT_JSON)"
else
  step latency 75 20 "$PY" benchmarks/bench_latency.py --device "$DEVICE" --backbones "$LAT_BACKBONE" \
      --sizes $LAT_SIZES --repeats "$LAT_REPEATS" --max-gallery-gb "$LAT_GB" --threads "$LAT_THREADS" --results "$RESULTS"
fi

# ---- corpus, then the bench_gpu phases (one process each: a time cap kills only its phase)
BENCHCMD=("$PY" benchmarks/bench_gpu.py --corpus "$CORPUS" --work "$WORK/runs" --synth-size "$SYNTH"
          "${BENCH[@]}" --out "$GPU_JSON")
step corpus 150 30 "${BENCHCMD[@]}" --phases corpus
ok corpus || { say "!! no corpus: the training, evaluation and gallery steps cannot run"; }
if ok corpus; then
  for spec in "eval 45 10" "train_eager 60 25" "train_compiled 150 60" "features 120 45"; do
    set -- $spec
    if phase_done "$GPU_JSON" "$1"; then say "$1: done earlier"; continue; fi
    step "$1" "$2" "$3" "${BENCHCMD[@]}" --phases "$1"
  done
  # ---- the ViT-B/32 gallery, shortened, on the same corpus and frame cache, with what is left
  if [ "${GALLERY:-1}" = 1 ]; then
    step gallery "$GALLERY_CAP" 45 env "${GALLERY_ENV[@]}" DATA="$CORPUS" WORK="$WORK/gallery" \
        OUT="$WORK/gallery-export" bash benchmarks/gallery_gpu.sh
    tar -czf "$DEVOUT/gallery_gpu.tar.gz" -C "$WORK" gallery-export 2>/dev/null || true
  fi
fi

# ---- check every JSON and its keys, summarise, copy what comes back
set +e
"$PY" benchmarks/gpu_session_report.py --results "$RESULTS" --slug "$SLUG" --sizes $LAT_SIZES \
    --steps-file "$STATUS" --gallery "$WORK/gallery-export" --out "$DEVOUT" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
set -e
for f in "$GPU_JSON" "$LAT_JSON"; do [ -f "$f" ] && cp "$f" "$DEVOUT/"; done
say "session done in $(( $(date +%s) - START ))s; files in $DEVOUT: $(ls "$DEVOUT" | tr '\n' ' ')"
exit "$rc"
