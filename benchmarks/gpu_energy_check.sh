#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (issue 3's GPU check): NVML power live, then
# torch-cuda alone and torch-cuda vs torch-cuda-graph with energy, idle baseline first.
# Pass the carried wheel folder as $1 (default .whl); see gpu_env.sh.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh" "${1:-.whl}"
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv
python3 -m anetui doctor | tail -5
python3 -m anetui power --source nvml --count 8 --json | tee "$OUT/nvml_idle.jsonl"
python3 -m anetui bench --backends torch-cuda --power nvml --idle-seconds 3 --duration 10 \
    --json "$OUT/energy_cuda.json"
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --power nvml --idle-seconds 3 \
    --interleave --duration 10 --json "$OUT/energy_pair.json" --markdown "$OUT/energy_pair.md"
