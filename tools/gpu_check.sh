#!/usr/bin/env bash
# Every GPU check in one command, for a machine with a CUDA torch, mmcv 2.1.0
# with CUDA ops, mmdet 3.3.0 and pytest importable:
#   OUT=results bash tools/gpu_check.sh
# Builds rfcn_mm's CUDA kernels, runs the CUDA tests, compute-sanitizer
# memcheck and racecheck over the op tests, and both benchmarks; logs and
# tables go to $OUT (default work_dirs/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-work_dirs/gpu_check}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
status=0
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, record the result
  local name=$1; shift
  echo "== $name: $*"
  if "$@" >"$OUT/$name.log" 2>&1; then
    echo "   ok"
  else
    echo "   FAILED (exit $?), see $OUT/$name.log"; tail -20 "$OUT/$name.log"
    status=1
  fi
}
step build env FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" \
  MAX_JOBS="${MAX_JOBS:-16}" "$PY" setup.py build_ext --inplace
step cuda_tests "$PY" -m pytest tests -m cuda -q -p no:cacheprovider
step all_tests "$PY" -m pytest tests -q -x -p no:cacheprovider
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    step "sanitizer_$tool" compute-sanitizer --tool "$tool" \
      --error-exitcode 1 "$PY" -m pytest tests/test_ops -m cuda -q \
      -p no:cacheprovider
  done
else
  echo "compute-sanitizer not found"; status=1
fi
step bench_ops "$PY" tools/benchmark_ops.py --out "$OUT/bench_ops.md"
step bench_detector "$PY" tools/benchmark_detector.py \
  --out "$OUT/bench_detector.md"
exit $status
