#!/usr/bin/env bash
# The GPU checks, for a machine with a CUDA torch, mmcv 2.1.0 with CUDA ops,
# mmdet 3.3.0 and pytest importable:
#   OUT=results bash tools/gpu_check.sh [STAGE...]
# Stages (default: all, in this order; each fits in a few minutes on an
# H100, so they can also run one command at a time):
#   build      compile rfcn_mm's CUDA kernels (FORCE_CUDA=1)
#   tests      the CUDA-marked tests (the legacy modes' kernels against the
#              CPU ones and the converted networks on CUDA among them), then
#              the whole suite
#   sanitizer  compute-sanitizer memcheck and racecheck over the op kernels
#   bench      tools/analysis_tools/benchmark_ops.py and tools/analysis_tools/benchmark_detector.py (the
#              tables, the work table with the copies between host and GPU
#              that only a GPU run has, and a torch.profiler breakdown of
#              R-FCN's inference and training steps)
#              and tools/analysis_tools/benchmark_deploy.py (compiled and exported
#              inference against the CUDA-graph fast mode)
#   study      tools/analysis_tools/k_study.py: R-101, k = 1, 3, 7 on the synthetic data;
#              tools/analysis_tools/deform_study.py: plain against Deformable R-FCN
#   alternating  tools/analysis_tools/alternating_study.py: R-101, the 4-step alternating
#              training against end-to-end training, mAP and wall time
# Logs, tables and plots go to $OUT (default work_dirs/gpu_check); the exit
# status is non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-work_dirs/gpu_check}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
status=0
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, record the result
  local name=$1; shift
  echo "== $name: $*"
  local start=$SECONDS
  if "$@" >"$OUT/$name.log" 2>&1; then
    echo "   ok ($((SECONDS - start)) s)"
  else
    echo "   FAILED (exit $?, $((SECONDS - start)) s), see $OUT/$name.log"
    tail -20 "$OUT/$name.log"
    status=1
  fi
}
# preflight: name what is missing instead of failing stage by stage
"$PY" - <<'PY' || exit 2
import importlib, sys
missing = [m for m in ('torch', 'mmcv', 'mmengine', 'mmdet', 'pytest')
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f'gpu_check: not importable: {", ".join(missing)}')
import torch
if not torch.cuda.is_available():
    sys.exit('gpu_check: torch sees no CUDA GPU')
print(f'gpu_check: torch {torch.__version__}, {torch.cuda.get_device_name()}')
PY
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build tests sanitizer bench study alternating)
for stage in "${stages[@]}"; do
  case "$stage" in
    build)
      build_ext() {  # build_ext [VAR=VALUE...]: compile in place
        env "$@" FORCE_CUDA=1 \
          TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" \
          MAX_JOBS="${MAX_JOBS:-16}" "$PY" setup.py build_ext --inplace
      }
      throws_cleanly() {  # a C++ error of the extension must raise
        "$PY" -c "
import torch
from rfcn_mm.ops._ext_loader import get_ext
get_ext()  # registers the torch.ops.rfcn_mm operators
try:  # 27 channels do not divide into 2 x 2 bins: TORCH_CHECK_VALUE
    torch.ops.rfcn_mm.ps_roi_pool(torch.zeros(1, 27, 4, 4),
                                  torch.zeros(1, 5), 2, 2, 0.5)
except (RuntimeError, ValueError):
    print('C++ errors raise cleanly')"
      }
      raised() { grep -qx 'C++ errors raise cleanly' \
        "$OUT/build_throws_cleanly.log"; }
      step build build_ext
      before=$status
      # an extension that links libstdc++ statically (seen with a compiler
      # wrapper other than torch's) dies on its first C++ error: rebuild it
      # with the system compiler when there is one
      step build_throws_cleanly throws_cleanly
      if ! raised; then
        if [ -z "${CXX:-}" ] && [ -x /usr/bin/g++ ] && [ -x /usr/bin/gcc ]
        then
          echo "   the extension crashes on C++ errors; rebuilding with" \
               "CXX=/usr/bin/g++ CC=/usr/bin/gcc"
          step build_system_gcc build_ext CXX=/usr/bin/g++ CC=/usr/bin/gcc
          step build_throws_cleanly throws_cleanly
          raised && status=$before
        fi
        raised || {
          echo "   the extension crashes on C++ errors; rebuild with the" \
               "compiler torch was built with (CXX=...)"
          status=1
        }
      fi ;;
    tests)
      step cuda_tests "$PY" -m pytest tests -m cuda -v -p no:cacheprovider
      step all_tests "$PY" -m pytest tests -q -p no:cacheprovider ;;
    sanitizer)
      if command -v compute-sanitizer >/dev/null; then
        # memcheck without the caching allocator (so that reads past a
        # tensor's end are seen) over the op tests that launch each kernel
        # on each path (sorted_nms included); racecheck over those that
        # run the shared-memory kernels. Gradcheck (thousands of launches)
        # is left out for time.
        step sanitizer_memcheck env PYTORCH_NO_CUDA_MEMORY_CACHING=1 \
          compute-sanitizer --tool memcheck --error-exitcode 1 \
          "$PY" -m pytest tests/test_ops -m cuda -q -p no:cacheprovider -k \
          "(matches_cpu and dtype0) or kernel_paths or unchecked or low_prec or cuda_matches_cpu_and_mmcv or cuda_batched or cuda_matches_cpu_forward_and_backward or legacy_cuda_matches_cpu"
        # racecheck: only tests that launch no mmcv kernel (mmcv's NMS
        # gather has benign races of its own that racecheck reports)
        step sanitizer_racecheck compute-sanitizer --tool racecheck \
          --error-exitcode 1 "$PY" -m pytest tests/test_ops -m cuda -q \
          -p no:cacheprovider -k \
          "(matches_cpu and dtype0) or kernel_paths or sorted_nms and graph_capture or cuda_batched or cuda_matches_cpu_forward_and_backward or legacy_cuda_matches_cpu"
      else
        echo "compute-sanitizer not found"; status=1
      fi ;;
    bench)
      step bench_ops "$PY" tools/analysis_tools/benchmark_ops.py --out "$OUT/bench_ops.md"
      step bench_detector "$PY" tools/analysis_tools/benchmark_detector.py \
        --out "$OUT/bench_detector.md"
      step work_detector "$PY" tools/analysis_tools/benchmark_detector.py --work \
        --out "$OUT/work_detector.md"
      step profile_detector "$PY" tools/analysis_tools/benchmark_detector.py \
        --profile "$OUT/profile_detector.md"
      step bench_deploy "$PY" tools/analysis_tools/benchmark_deploy.py --device cuda \
        --out "$OUT/bench_deploy.md" ;;
    study)
      # checkpoints and data stay in work_dirs; the results go to $OUT
      # the three runs share the GPU, so that the study fits in one call
      step k_study "$PY" tools/analysis_tools/k_study.py --depth 101 --iters 1000 \
        --val-interval 250 --batch-size 8 --workers 3 --parallel \
        --work-dir work_dirs/k_study_r101 --data-root work_dirs/synthetic_voc
      cp work_dirs/k_study_r101/k_study.* work_dirs/k_study_r101/k*.log \
        "$OUT"/ 2>/dev/null
      # plain against Deformable R-FCN (DCN conv5 needs bottleneck blocks)
      step deform_study "$PY" tools/analysis_tools/deform_study.py --depth 101 \
        --iters 1000 --val-interval 250 \
        --variants plain dcn-conv5 deform-pool deform \
        --work-dir work_dirs/deform_study_r101 \
        --data-root work_dirs/synthetic_voc
      cp work_dirs/deform_study_r101/deform_study.* "$OUT"/ 2>/dev/null ;;
    alternating)
      step alternating_study "$PY" tools/analysis_tools/alternating_study.py --depth 101 \
        --iters 800 --work-dir work_dirs/alternating_study_r101 \
        --data-root work_dirs/synthetic_voc
      cp work_dirs/alternating_study_r101/alternating_study.* "$OUT"/ \
        2>/dev/null ;;
    *)
      echo "unknown stage '$stage' (build, tests, sanitizer, bench, study," \
           "alternating)"
      exit 2 ;;
  esac
done
# one report with every table that was produced
{
  echo "# GPU check, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null)"
  for f in bench_ops.md bench_detector.md work_detector.md bench_deploy.md \
      k_study.md deform_study.md alternating_study.md; do
    [ -f "$OUT/$f" ] && { echo; cat "$OUT/$f"; }
  done
  echo; echo "Stage logs:"; for f in "$OUT"/*.log; do
    [ -f "$f" ] && echo "- $(basename "$f"): $(tail -1 "$f" | cut -c1-120)"
  done
} > "$OUT/report.md"
echo "report: $OUT/report.md"
exit $status
