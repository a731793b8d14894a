"""The project's command-line tools run as a user runs them (a separate
Python process, or, for tools that stop on bad input, this process with
what a separate one would have), and the values that mmengine's log
printed."""
import contextlib
import io
import os
import runpy
import subprocess
import sys
import traceback
from typing import List, Optional


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


def run_tool_here(script: str,
                  *args,
                  cwd,
                  env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """``python script *args`` in ``cwd``, run in this process, whose
    imports are done (a new interpreter spends about 5 s importing torch,
    mmengine and mmdet). ``sys.argv``, the working directory, the
    environment (``env``, as for ``subprocess.run``) and the streams are
    those the script would have in a process of its own, and ``sys.argv``,
    the directory and ``os.environ`` are restored afterwards.
    As from a process: the exit status (1 with the traceback on stderr for
    an uncaught exception, ``SystemExit``'s code, e.g. argparse's 2) and
    both streams."""
    out, err = io.StringIO(), io.StringIO()
    argv, here, environ = sys.argv, os.getcwd(), dict(os.environ)
    code = 0
    try:
        sys.argv = [script, *map(str, args)]
        os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(script, run_name='__main__')
            except SystemExit as exit_:
                if isinstance(exit_.code, int) or exit_.code is None:
                    code = exit_.code or 0
                else:  # sys.exit('message')
                    print(exit_.code, file=sys.stderr)
                    code = 1
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        os.chdir(here)
        os.environ.clear()
        os.environ.update(environ)
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(),
                                       err.getvalue())


def logged(stdout: str, key: str) -> List[float]:
    """Every value of ``key`` (e.g. ``pascal_voc/mAP``) in the log."""
    return [
        float(line.split(f'{key}:')[1].split()[0])
        for line in stdout.splitlines() if f'{key}:' in line
    ]
