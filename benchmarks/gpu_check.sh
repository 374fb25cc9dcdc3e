#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (issue 2's GPU check): torch-cuda and
# torch-cuda-graph on MobileNetV2 bs1, interleaved, plus an fp16-vs-fp16 run that
# isolates what CUDA graph replay buys. Writes JSON and Markdown under $OUT.
# That machine has torch but no hdrhistogram: pass its wheel folder as $1 (default .whl).
set -uo pipefail
OUT=${OUT:-out-gpu}
mkdir -p "$OUT"
WHEELS=${1:-.whl}
if ! python3 -c "import hdrh" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,power.draw,clocks.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
python3 -m anetui doctor
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --interleave --duration 10 \
    --json "$OUT/gpu_default.json" --markdown "$OUT/gpu_default.md"
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --dtype fp16 --interleave \
    --duration 5 --reference torch-cuda --json "$OUT/gpu_fp16.json"
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --batch-size 32 --dtype fp16 \
    --interleave --duration 5 --json "$OUT/gpu_fp16_bs32.json"
