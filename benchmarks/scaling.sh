#!/usr/bin/env bash
# The multi-instance and wrapper-overhead benchmarks in one go, sized to the machine:
# instance counts are the powers of two up to its physical cores. Writes each
# table to OUT (default ./bench_out) as it finishes, so a cut-short run keeps
# what it measured.
#     bash benchmarks/scaling.sh [OUT]
set -uo pipefail
OUT=${1:-${OUT:-bench_out}}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m rn50 info | tee "$OUT/info.txt"
cores=$("$PY" -m rn50 info --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['platform']['derived']['physical_cores'])")
counts=1; n=2
while [ "$n" -le "$cores" ]; do counts="$counts,$n"; n=$((n * 2)); done
echo "physical cores: $cores; instance counts: $counts"
engines=${ENGINES:-openvino,onnxruntime,torch}
timeout "${MULTI_TIMEOUT:-240}" "$PY" benchmarks/multi_instance.py --backend "${BACKEND:-openvino}" \
  --batch 1,16 --instances "$counts" --duration "${DURATION:-6}" --rounds "${ROUNDS:-1}" \
  2>&1 | tee "$OUT/multi_instance.txt"
for batch in 1 64; do
  timeout "${LOOP_TIMEOUT:-150}" "$PY" benchmarks/vs_engine_loops.py --engines "$engines" \
    --batch "$batch" --duration "${DURATION:-6}" --rounds 2 2>&1 | tee "$OUT/engine_loops_b$batch.txt"
done
