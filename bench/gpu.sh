#!/usr/bin/env bash
# GPU throughput at 1080p (issue 4): carry (the default), warm with 1/4/8 lanes, loss-only, beside the naive
# loop, on a 1080p clip made from the bundled sample (20 s unless GPU_SECONDS says otherwise). One
# JSON object per line in RESULTS (default bench/results/gpu_1080p.jsonl). Prepared for a lent GPU
# (see /work/.library/device/README.md; bench/device_session.sh runs it with the other GPU checks):
#   bash bench/gpu.sh [PRESET] [RESULTS]
# GPU_WIDTH/GPU_HEIGHT make a smaller clip, for a dry run of this script on a CPU.
set -euo pipefail
PRESET=${1:-balanced}
RESULTS=${2:-bench/results/gpu_1080p.jsonl}
WIDTH=${GPU_WIDTH:-1920}
HEIGHT=${GPU_HEIGHT:-1080}
OUT=bench/out/gpu
mkdir -p "$OUT" "$(dirname "$RESULTS")"
python3 - "$WIDTH" "$HEIGHT" "${GPU_SECONDS:-20}" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "bench")
from memory import looped_clip
width, height, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
looped_clip(Path("samples/bigbuckbunny.mp4"), seconds, Path("bench/out/gpu/clip.mp4"), width, (width, height))
PY
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
run() {
    echo "-- $(date +%T) $*" >&2
    python3 bench/throughput.py "$OUT/clip.mp4" --preset "$PRESET" --max-side "$WIDTH" "$@" |
        python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'
}
{
    run --temporal carry --naive
    run --temporal loss-only --naive
    run --temporal warm --lanes 1 --naive
    run --temporal warm --lanes 4
    run --temporal warm --lanes 8
} | tee "$RESULTS"
