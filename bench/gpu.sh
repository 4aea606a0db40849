#!/usr/bin/env bash
# GPU throughput at 1080p (issue 4): carry (the default), warm with 1/4/8 lanes, loss-only, beside the naive
# loop, on a 20 s 1080p clip made from the bundled sample. One JSON object per line in
# bench/results/gpu_1080p.jsonl. Prepared for a lent GPU (see /work/.library/device/README.md):
#   bash bench/gpu.sh [PRESET]
set -euo pipefail
PRESET=${1:-balanced}
OUT=bench/out/gpu
mkdir -p "$OUT" bench/results
python - <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "bench")
from memory import looped_clip
looped_clip(Path("samples/bigbuckbunny.mp4"), 20, Path("bench/out/gpu/1080p.mp4"), 1920, (1920, 1080))
PY
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
run() { python bench/throughput.py "$OUT/1080p.mp4" --preset "$PRESET" --max-side 1920 "$@" | python -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'; }
{
    run --temporal carry --naive
    run --temporal warm --lanes 1 --naive
    run --temporal warm --lanes 4
    run --temporal warm --lanes 8
    run --temporal loss-only --naive
} | tee bench/results/gpu_1080p.jsonl
