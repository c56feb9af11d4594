#!/usr/bin/env bash
# Wheels the lent GPU machine lacks, for benchmarks/gpu_session.sh (issue 14), into .whl/gpu
# (ignored by git; carried to the device with carry=[".whl/gpu"]).  Run HERE, not on the device:
# the device reaches no package registry.
#
#   bash benchmarks/gpu_wheels.sh            # 9 wheels, 49.5 MiB; the device tool carries at most 64 MiB in all
#   WITH_FAISS=1 bash benchmarks/gpu_wheels.sh   # + faiss-cpu (18 MiB): over the limit with av+decord,
#                                                #   and no gpu_session.sh step needs it (search only)
#
# The device's image (/work/.library/device/KINDS.md) has python3 3.12 with torch 2.11, timm, regex,
# tqdm, pyyaml, pillow, tabulate, portalocker, huggingface-hub, safetensors, numpy, pandas,
# matplotlib, seaborn; it lacks open_clip_torch (+ ftfy, wcwidth), decord, av, fvcore (+ iopath,
# yacs, termcolor).  fvcore and iopath 0.1.10 are sdist-only: built here into pure-Python wheels.
# One version of each, no dependencies resolved (pip download --no-deps): the list is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-.whl/gpu}
PY=${PY:-3.12}
mkdir -p "$DEST"
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
BIN=(open_clip_torch==3.3.0 ftfy==6.3.1 "wcwidth>=0.2.13" decord==0.6.0 "av==18.1.0"
     yacs==0.1.8 "termcolor>=2")
[ "${WITH_FAISS:-0}" = 1 ] && BIN+=("faiss-cpu==1.15.1")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" --implementation cp \
    "${PLAT[@]}" -d "$DEST" "${BIN[@]}"
# sdist-only (fvcore; iopath 0.1.10, the version the project's venv has): pure-Python wheels
# built here work on any CPython 3
for sd in fvcore==0.1.5.post20221221 iopath==0.1.10; do
  ls "$DEST/${sd%%==*}"-*.whl >/dev/null 2>&1 || \
      python3 -m pip wheel -q --no-deps --no-build-isolation -w "$DEST" "$sd"
done
# exactly one version of each distribution (two stop the device's install)
python3 - "$DEST" <<'PY'
import collections, pathlib, sys
d = pathlib.Path(sys.argv[1])
names = collections.Counter(p.name.split("-")[0].lower() for p in d.glob("*.whl"))
dup = [n for n, c in names.items() if c > 1]
if dup:
    sys.exit(f"{d}: several versions of {dup}; delete the old ones")
size = sum(p.stat().st_size for p in d.glob("*.whl")) / 2**20
print(f"{d}: {len(names)} wheels, {size:.1f} MiB (the device tool carries at most 64 MiB with the tree)")
PY
