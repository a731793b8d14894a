"""The project's command-line tools run as a user runs them (a separate
Python process), and the values that mmengine's log printed."""
import subprocess
import sys
from typing import List


def run_tool(*args, cwd, timeout: float = 600) -> str:
    """``python *args`` in ``cwd``; fails the test, showing the ends of
    both streams, unless it exits with 0. Returns its stdout."""
    proc = subprocess.run([sys.executable, *args],
                          capture_output=True,
                          text=True,
                          timeout=timeout,
                          cwd=cwd)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


def logged(stdout: str, key: str) -> List[float]:
    """Every value of ``key`` (e.g. ``pascal_voc/mAP``) in the log."""
    return [
        float(line.split(f'{key}:')[1].split()[0])
        for line in stdout.splitlines() if f'{key}:' in line
    ]
