# Sourced by the GPU check scripts: $OUT for results, and hdrhistogram from carried
# wheels ($1, default .whl) where the lent machine's Python lacks it.
OUT=${OUT:-out-gpu}
mkdir -p "$OUT"
WHEELS=${1:-.whl}
if ! python3 -c "import hdrh" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
