#!/usr/bin/env bash
# Set up (or reuse) a virtual environment for rfcn_mm and run a job in it.
#
#   bash tools/bootstrap.sh demo [ARGS...]   # offline demo: data, train, eval
#   bash tools/bootstrap.sh test [ARGS...]   # the test suite (pytest ARGS)
#   bash tools/bootstrap.sh env              # only set up the environment
#
# Idempotent: installs only what is missing. Environment variables:
#   RFCN_VENV        where the venv lives (default: .venv in the checkout)
#   RFCN_PYTHON      interpreter to create it with (default: python3.11, python3)
#   RFCN_TORCH_SPEC  torch requirement to install when torch is missing
#                    (default: torch==2.13.0; mmcv 2.1.0 cannot build on 2.14+)
#   PIP_FIND_LINKS   folders pip also looks in; a prebuilt mmcv 2.1.0 wheel
#                    there is used instead of the ~20 min source build
#   FORCE_CUDA=1     build rfcn_mm's CUDA kernels (also mmcv's, if built here)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOB="${1:-env}"
shift || true
VENV="${RFCN_VENV:-$ROOT/.venv}"
TORCH_SPEC="${RFCN_TORCH_SPEC:-torch==2.13.0}"

say() { printf '[bootstrap] %s\n' "$*"; }
START=$SECONDS
elapsed() { printf '%dm%02ds' $(((SECONDS - $1) / 60)) $(((SECONDS - $1) % 60)); }

if [ ! -x "$VENV/bin/python" ]; then
  PY="${RFCN_PYTHON:-}"
  if [ -z "$PY" ]; then
    PY="$(command -v python3.11 || command -v python3)"
  fi
  say "creating virtual environment $VENV with $($PY --version 2>&1)"
  "$PY" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

# mmcv's setup.py imports pkg_resources, which setuptools 82 removed; torch
# depends on setuptools, so pin it for every install below.
CONSTRAINTS="$VENV/rfcn_constraints.txt"
printf 'setuptools<82\n' > "$CONSTRAINTS"
export PIP_CONSTRAINT="$CONSTRAINTS"

have() { "$PY" -c "$1" >/dev/null 2>&1; }

if ! have 'import setuptools, wheel, ninja; import pkg_resources'; then
  say 'installing build tools (setuptools<82, wheel, ninja)'
  "${PIP[@]}" install -q 'setuptools<82' wheel ninja
fi

if ! have 'import torch'; then
  say "installing $TORCH_SPEC"
  "${PIP[@]}" install -q "$TORCH_SPEC"
fi

MMCV_OK='import mmcv, mmcv._ext; assert mmcv.__version__ == "2.1.0"'
if ! have "$MMCV_OK"; then
  if have 'import mmcv'; then
    say 'mmcv is installed without its compiled ops (or in another version):'
    say 'replacing it with mmcv 2.1.0 built with ops'
    "${PIP[@]}" uninstall -y -q mmcv mmcv-full mmcv-lite || true
  fi
  if "${PIP[@]}" install -q --only-binary=mmcv mmcv==2.1.0 >/dev/null 2>&1 \
      && have 'import mmcv._ext'; then
    say 'installed a prebuilt mmcv 2.1.0 wheel found on PIP_FIND_LINKS'
  else
    "${PIP[@]}" uninstall -y -q mmcv >/dev/null 2>&1 || true
    say 'no prebuilt mmcv 2.1.0 wheel for this torch: building mmcv 2.1.0 from'
    say 'source with its compiled ops. This takes about 20 minutes on 2 cores.'
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" install \
      --no-build-isolation --no-binary mmcv mmcv==2.1.0
  fi
fi

if ! have 'import mmengine, mmdet, pycocotools, pytest, xdist, matplotlib'; then
  say 'installing mmengine 0.10.7, mmdet 3.3.0, pycocotools, pytest, pytest-xdist'
  "${PIP[@]}" install -q mmcv==2.1.0 mmengine==0.10.7 mmdet==3.3.0 \
    pycocotools matplotlib -r requirements/tests.txt
fi

# the deploy extra (ONNX export and ONNX Runtime): the tests cover it
if [ "$JOB" = test ] && ! have 'import onnx, onnxruntime, onnxscript'; then
  say 'installing the deploy extra (onnx, onnxruntime, onnxscript)'
  "${PIP[@]}" install -q -r requirements/deploy.txt
fi

if ! "$PY" - <<'PYEOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location(
    'mmcv_ops', 'rfcn_mm/utils/mmcv_ops.py')
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
try:
    mod.check_mmcv_ops()
except ImportError as e:
    print(f'[bootstrap] {e}', file=sys.stderr)
    sys.exit(1)
PYEOF
then
  exit 1
fi

# rfcn_mm itself: the editable install compiles the extension once; later
# runs rebuild only what changed (setup.py keeps ninja's objects in
# build/temp.* of the checkout for every kind of build, the editable
# install's included), and a run with nothing changed takes seconds.
build_log="$VENV/rfcn_build.log"
if ! have 'import importlib.metadata as m; m.version("rfcn_mm")'; then
  say 'installing rfcn_mm (editable) and compiling its extension'
  "${PIP[@]}" install -v --no-deps --no-build-isolation -e . \
    >"$build_log" 2>&1 || {
    cat "$build_log" >&2
    say 'installing rfcn_mm failed (full log above)'
    exit 1
  }
else
  "$PY" setup.py build_ext --inplace >"$build_log" 2>&1 || {
    cat "$build_log" >&2
    say 'building rfcn_mm._ext failed (full log above)'
    exit 1
  }
fi
compiled=$(grep -c '^ *\[[0-9]*/[0-9]*\] ' "$build_log" || true)
say "rfcn_mm._ext: ${compiled} file(s) compiled (log: $build_log)"
say "set-up took $(elapsed "$START")"

run_timed() {
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  say "$JOB took $(elapsed "$t0"); set-up and $JOB $(elapsed "$START") in all"
  return "$rc"
}

case "$JOB" in
  env) say "environment ready: source $VENV/bin/activate" ;;
  test)
    # pytest-xdist: a worker per core (at most 4), each test file on one
    # worker (its module fixtures built once), the files in collection
    # order (those with slow tests first: tests/conftest.py). Not
    # loadgroup: pytest 9.2 drops xdist_group's node-id suffix, and with it
    # the groups. A later -n 0 runs everything in this process.
    run_timed "$PY" -m pytest tests -n auto --maxprocesses 4 \
      --dist loadfile --no-loadscope-reorder "$@" ;;
  demo) run_timed "$PY" tools/demo.py "$@" ;;
  *) say "unknown job '$JOB' (expected demo, test or env)"; exit 2 ;;
esac
