#!/usr/bin/env bash
# Runs launch_benchmark.py inside the container with the settings given as environment
# variables (set by `launch_benchmark.py --docker-image`). Re-run it with overrides, e.g.
#     NOINSTALL=True BATCH_SIZE=128 ./start.sh
# NOINSTALL=True skips installing what the image lacks.
set -euo pipefail

RN50_SRC=${RN50_SRC:-/workspace/rn50-src}
PYTHON=${PYTHON:-python3}
export PYTHONPATH="${RN50_SRC}${PYTHONPATH:+:${PYTHONPATH}}"

if [ "${NOINSTALL:-False}" != "True" ]; then
  missing=()
  for module in numpy PIL onnx openvino ${EXTRA_MODULES:-}; do
    "$PYTHON" -c "import ${module}" >/dev/null 2>&1 || missing+=("${module}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing what the image lacks (${missing[*]}): numpy pillow onnx openvino ${EXTRA_PACKAGES:-}"
    # shellcheck disable=SC2086
    "$PYTHON" -m pip install --no-cache-dir numpy pillow onnx openvino ${EXTRA_PACKAGES:-}
  fi
  if ! command -v numactl >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
      && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq numactl) >/dev/null 2>&1 \
      || echo "numactl could not be installed: CPU affinity is used instead"
  fi
fi

args=(--model-name "${MODEL_NAME:-resnet50}" --framework "${FRAMEWORK:-tensorflow}"
      --precision "${PRECISION:-fp32}" --mode "${MODE:-inference}"
      --batch-size "${BATCH_SIZE:--1}" --socket-id "${SOCKET_ID:--1}"
      --num-cores "${NUM_CORES:--1}" --num-instances "${NUM_INSTANCES:-1}"
      --output-dir "${OUTPUT_DIR:-/output}")
optional() {  # flag, value: passed only when the value is set
  if [ -n "${2:-}" ]; then args+=("$1" "$2"); fi
}
optional --in-graph "${IN_GRAPH:-}"
optional --data-location "${DATASET_LOCATION:-}"
optional --backend "${BACKEND:-}"
optional --data-format "${DATA_FORMAT:-}"
optional --input-node "${INPUT_NODE:-}"
optional --output-node "${OUTPUT_NODE:-}"
optional --numa-cores-per-instance "${NUMA_CORES_PER_INSTANCE:-}"
optional --num-intra-threads "${NUM_INTRA_THREADS:-}"
optional --num-inter-threads "${NUM_INTER_THREADS:-}"
if [ "${BENCHMARK_ONLY:-True}" = "True" ]; then args+=(--benchmark-only); fi
if [ "${ACCURACY_ONLY:-False}" = "True" ]; then args+=(--accuracy-only); fi
if [ "${VERBOSE:-False}" = "True" ]; then args+=(--verbose); fi
model_args=()
if [ -n "${WARMUP_STEPS:-}" ]; then model_args+=("warmup_steps=${WARMUP_STEPS}"); fi
if [ -n "${STEPS:-}" ]; then model_args+=("steps=${STEPS}"); fi
if [ ${#model_args[@]} -gt 0 ]; then args+=(-- "${model_args[@]}"); fi

exec "$PYTHON" -m rn50.launch_benchmark "${args[@]}"
