#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (issue 3's GPU check): NVML power live, then
# torch-cuda alone and torch-cuda vs torch-cuda-graph with energy, idle baseline first.
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
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv
python3 -m anetui doctor | tail -5
python3 -m anetui power --source nvml --count 8 --json | tee "$OUT/nvml_idle.jsonl"
python3 -m anetui bench --backends torch-cuda --power nvml --idle-seconds 3 --duration 10 \
    --json "$OUT/energy_cuda.json"
python3 -m anetui bench --backends torch-cuda,torch-cuda-graph --power nvml --idle-seconds 3 \
    --interleave --duration 10 --json "$OUT/energy_pair.json" --markdown "$OUT/energy_pair.md"
