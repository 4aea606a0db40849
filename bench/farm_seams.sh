#!/usr/bin/env bash
# Farm seams on real footage: plan bikes.mp4 (or $1) in chunks of 40 (default warm-up), run
# it on a local Ray, and print the warping error of every frame pair across a chunk boundary
# against the median of the other pairs (issue 5: within 1.5x). Runs the default plan (seams
# cross-faded, boundaries snapped to hard cuts) and, for comparison, the plain join; then divides
# every pair by the same pair of a one-piece render (bench/seams_vs_single.py).
#   bash bench/farm_seams.sh [CLIP] [STYLE] [OUT_DIR]
set -euo pipefail
CLIP=${1:-/work/shared/media/bikes.mp4}
STYLE=${2:-samples/starry_night.jpg}
OUT=${3:-bench/out/farm}
mkdir -p "$OUT"
vidstyle farm plan "$CLIP" "$STYLE" "$OUT/blend.mp4" --chunk 40 --preset draft -o "$OUT/blend.json"
vidstyle farm plan "$CLIP" "$STYLE" "$OUT/plain.mp4" --chunk 40 --preset draft \
    --seam cut --no-snap-cuts -o "$OUT/plain.json"
for job in blend plain; do
    /usr/bin/time -f "$job: %e s wall" vidstyle farm run "$OUT/$job.json" --num-cpus 2 -q
    vidstyle farm seams "$OUT/$job.json" || true
done
# the same clip in one piece (model from the cache): pair-by-pair ratios show what chunking adds
vidstyle "$CLIP" "$STYLE" "$OUT/single.mp4" --preset draft -q -y
python3 "$(dirname "$0")/seams_vs_single.py" "$CLIP" "$OUT/single.mp4" "$OUT/blend.mp4" "$OUT/plain.mp4"
vidstyle info "$OUT/blend.mp4" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("frames", d["frame_count"], "rate", d["rate"], "audio", d["audio"])'
