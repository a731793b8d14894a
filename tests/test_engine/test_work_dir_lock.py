"""One training per work dir: a second run in the same folder stops at once
naming the first; a crashed run leaves nothing that blocks the next."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers.tool_runs import run_tool_here

from rfcn_mm.engine import WorkDirBusyError, WorkDirLock

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')


def _hold_lock(work_dir, ready):
    """A child process that takes the work dir's lock and sleeps."""
    code = textwrap.dedent(f"""
        import time
        from rfcn_mm.engine.work_dir_lock import WorkDirLock
        lock = WorkDirLock({str(work_dir)!r}).acquire()
        open({str(ready)!r}, 'w').close()
        time.sleep(120)
    """)
    child = subprocess.Popen([sys.executable, '-c', code])
    deadline = time.time() + 60
    while not osp.exists(ready):
        assert child.poll() is None and time.time() < deadline
        time.sleep(0.05)
    return child


def test_a_second_holder_is_refused_until_the_first_dies(tmp_path):
    work = tmp_path / 'work'
    child = _hold_lock(work, tmp_path / 'ready')
    try:
        with pytest.raises(WorkDirBusyError) as info:
            WorkDirLock(str(work)).acquire()
        message = str(info.value)
        assert f'work dir {work} is in use by another run' in message
        assert f'pid {child.pid} on ' in message and 'command: ' in message
        child.send_signal(signal.SIGKILL)  # a crash: no clean release
        child.wait(timeout=30)
        with WorkDirLock(str(work)) as lock:  # the kernel released it
            assert f'pid {os.getpid()} on ' in open(lock.path).read()
        with WorkDirLock(str(work)):  # released by the context manager
            pass
    finally:
        if child.poll() is None:
            child.kill()


def test_train_py_stops_when_another_training_holds_the_work_dir(tmp_path):
    work = tmp_path / 'work'
    child = _hold_lock(work, tmp_path / 'ready')
    try:
        proc = run_tool_here(
            osp.join(ROOT, 'tools', 'train.py'), SYNTHETIC, '--work-dir',
            str(work), cwd=str(tmp_path))
    finally:
        child.kill()
        child.wait(timeout=30)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert f'is in use by another run (training: pid {child.pid}' in last
    assert not list(work.glob('*.pth')) and not list(work.glob('*.py'))
