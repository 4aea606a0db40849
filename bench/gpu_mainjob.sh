#!/usr/bin/env bash
# The README main job on whatever device `auto` finds (issue 14: how long a new style takes to
# adapt from the meta-learned start, per preset, on a GPU), cold cache, then `vidstyle eval` of
# the renders (style ratio, content, colour, warping error; draft's --temporal off render for the
# carry/off ratio). Writes RESULTS/mainjob.log and RESULTS/mainjob_eval.json; renders go to
# RESULTS/videos.
#   bash bench/gpu_mainjob.sh RESULTS
set -uo pipefail
RESULTS=${1:?results folder}
VIDEOS="$RESULTS/videos"
mkdir -p "$VIDEOS"
VIDSTYLE_CACHE=$(mktemp -d)
export VIDSTYLE_CACHE
clip=samples/bigbuckbunny.mp4
style=samples/starry_night.jpg
job() {  # NAME ARGS...: one render, timed end to end
    local name=$1
    shift
    local t0=$SECONDS
    echo "-- $(date +%T) vidstyle $clip $style $name.mp4 $*"
    python3 -m vidstyle "$clip" "$style" "$VIDEOS/$name.mp4" -q "$@"
    echo "   $name: exit $?, wall $((SECONDS - t0)) s"
}
{
    job draft --preset draft
    job balanced
    job draft_off --preset draft --temporal off
    python3 -m vidstyle eval "$clip" "$VIDEOS/draft.mp4" "$VIDEOS/draft_off.mp4" "$VIDEOS/balanced.mp4" \
        -s "$style" -q --json "$RESULTS/mainjob_eval.json"
    echo "   eval: exit $?"
} 2>&1 | tee "$RESULTS/mainjob.log"
