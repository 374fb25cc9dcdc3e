#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (issue 2's GPU check): torch-cuda and
# torch-cuda-graph on MobileNetV2 bs1, interleaved, plus an fp16-vs-fp16 run that
# isolates what CUDA graph replay buys. Writes JSON and Markdown under $OUT.
# Pass the carried wheel folder as $1 (default .whl); see gpu_env.sh.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh" "${1:-.whl}"
nvidia-smi --query-gpu=name,driver_version,power.draw,clocks.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
python3 -m anetui doctor
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --interleave --duration 10 \
    --json "$OUT/gpu_default.json" --markdown "$OUT/gpu_default.md"
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --dtype fp16 --interleave \
    --duration 5 --reference torch-cuda --json "$OUT/gpu_fp16.json"
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --batch-size 32 --dtype fp16 \
    --interleave --duration 5 --json "$OUT/gpu_fp16_bs32.json"
