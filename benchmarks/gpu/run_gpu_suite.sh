#!/usr/bin/env bash
# reszoo GPU suite (issue 5, deliverable 3): on a GPU machine WITHOUT TensorFlow (it has JAX and
# PyTorch with CUDA), install the carried keras wheel and run, in one process and within
# 8 minutes: reszoo resnet50 (224, batch 256, mixed_bfloat16) and resnet20 (32, batch 512)
# training steps on Keras's JAX backend, then torchvision's resnet50 (batch 256, bf16 autocast).
#
# usage:  benchmarks/gpu/run_gpu_suite.sh WHEEL_DIR [extra bench_jax.py args, e.g. --torch-compile]
#
# Fill WHEEL_DIR on a machine with network access (a few MB; never commit it: benchmarks/gpu/
# .gitignore ignores benchmarks/gpu/wheels/):
#     pip download keras==3.15.1 namex optree --no-deps -d benchmarks/gpu/wheels
#     # keras also imports absl-py, rich (+ markdown-it-py, mdurl, pygments), h5py, ml-dtypes,
#     # packaging; the JAX machine usually has numpy/ml-dtypes/packaging. To be safe add the
#     # pure-Python ones (binary wheels such as optree/h5py must match the GPU machine's Python;
#     # add --python-version 3.X --only-binary=:all: --platform manylinux2014_x86_64 if needed):
#     pip download absl-py rich markdown-it-py mdurl pygments --no-deps -d benchmarks/gpu/wheels
# With the device tool:  run(command="bash benchmarks/gpu/run_gpu_suite.sh benchmarks/gpu/wheels",
#                            carry=["benchmarks/gpu/wheels"], timeout_s=540)
# The wheels go into a private --target folder put first on PYTHONPATH: the machine's own
# packages are not changed. Results: stdout (a markdown table) and $OUT/gpu_suite.json when $OUT
# is set. Add the table to benchmarks/RESULTS.md by hand (the GPU machine's copy is thrown away).
set -euo pipefail

WHEELS="${1:?usage: run_gpu_suite.sh WHEEL_DIR [bench_jax.py args]}"
shift
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-python3}"
SITE="${RESZOO_GPU_SITE:-/tmp/reszoo-gpu-site}"
DEADLINE_S="${RESZOO_GPU_DEADLINE_S:-470}"   # the whole suite must finish within 8 minutes

echo "== machine"
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
"$PY" -c "import sys; print('python', sys.version.split()[0])"
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" \
    || { echo "error: this machine has no working JAX"; exit 2; }

echo "== installing the carried wheels from $WHEELS into $SITE"
ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "error: no .whl files in $WHEELS (see the header)"; exit 2; }
mkdir -p "$SITE"
for whl in "$WHEELS"/*.whl; do
    # one at a time: a binary wheel built for another Python is skipped, not fatal (the
    # machine may already have that package)
    if ! "$PY" -m pip install --quiet --no-deps --no-index --target "$SITE" --upgrade "$whl" \
            2>/tmp/reszoo-pip.err; then
        echo "  skipped $(basename "$whl"): $(tail -1 /tmp/reszoo-pip.err)"
    fi
done
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax
"$PY" -c "import keras, reszoo; print('keras', keras.__version__, 'backend', keras.backend.backend())"

echo "== benchmark"
JSON_ARGS=()
if [ -n "${OUT:-}" ]; then JSON_ARGS=(--json "$OUT/gpu_suite.json"); fi
timeout "$DEADLINE_S" "$PY" "$HERE/bench_jax.py" "${JSON_ARGS[@]}" "$@"
