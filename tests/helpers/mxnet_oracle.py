"""MXNet 1.9.1 as an oracle, in a virtual environment of its own.

MXNet 1.9.1 (the last release, with the reference's PSROIPooling and
DeformablePSROIPooling kernels in ``mx.nd.contrib``) imports only beside
numpy < 1.24, so it cannot live in the project's environment. The first
test that needs it creates ``build/mxnet_oracle/`` (once, under a file
lock shared by pytest's workers) with numpy 1.23.5 and mxnet 1.9.1 from
the package index; each use runs a script there in a subprocess. Where the
environment cannot be made (no index, no wheel for this platform), the
test is skipped with the reason."""
import fcntl
import os
import os.path as osp
import subprocess
import sys
import time
import venv

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HOME = osp.join(ROOT, 'build', 'mxnet_oracle')
PACKAGES = ('numpy==1.23.5', 'mxnet==1.9.1')


def _python() -> str:
    return osp.join(HOME, 'venv', 'bin', 'python')


def _ready() -> bool:
    return osp.isfile(osp.join(HOME, 'ready'))


def mxnet_python() -> str:
    """The oracle environment's Python; skips the test when it cannot be
    made."""
    if _ready():
        return _python()
    os.makedirs(HOME, exist_ok=True)
    with open(osp.join(HOME, 'lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _ready():
            return _python()
        failed = osp.join(HOME, 'failed')
        # a failure is remembered for an hour (one test session), not for
        # ever: the index may be reachable next time
        if osp.isfile(failed) and time.time() - osp.getmtime(failed) < 3600:
            pytest.skip(f'no MXNet oracle: {open(failed).read()}')
        try:
            venv.create(osp.join(HOME, 'venv'), with_pip=True, clear=True)
            proc = subprocess.run(
                [_python(), '-m', 'pip', 'install', '-q',
                 '--disable-pip-version-check', *PACKAGES],
                capture_output=True, text=True, timeout=600)
            ok = proc.returncode == 0 and subprocess.run(
                [_python(), '-c', 'import mxnet'],
                capture_output=True).returncode == 0
            reason = (proc.stderr or proc.stdout).strip()[-500:]
        except (OSError, subprocess.SubprocessError) as e:
            ok, reason = False, str(e)
        if not ok:
            with open(failed, 'w') as f:
                f.write(f'{" and ".join(PACKAGES)} could not be installed '
                        f'for {sys.version.split()[0]}: {reason}')
            pytest.skip(f'no MXNet oracle: {open(failed).read()}')
        open(osp.join(HOME, 'ready'), 'w').close()
    return _python()


def run_mxnet(script: str, cwd: str, timeout: float = 300) -> str:
    """Run ``script`` (Python source) with MXNet in ``cwd``; fails the
    test with its output unless it exits with 0. Returns its stdout."""
    proc = subprocess.run([mxnet_python(), '-c', script],
                          cwd=cwd,
                          capture_output=True,
                          text=True,
                          timeout=timeout,
                          env=dict(os.environ, MXNET_ENGINE_TYPE='NaiveEngine',
                                   OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
