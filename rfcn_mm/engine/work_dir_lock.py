"""One training per work dir.

Two trainings started in the same work dir would overwrite each other's
checkpoints, ``last_checkpoint`` and dumped config without a word.
:class:`WorkDirLock` holds an exclusive ``flock`` on ``<work_dir>/.lock``
for the life of the training process (rank 0 of a multi-process run), with
the holder's process id, host, start time and command line in the file, so
a second training in the same folder stops at once and names the first.
The kernel releases the lock when its process ends, however it ends: a
crashed or killed run leaves nothing that blocks the next one.
"""
import datetime
import os
import os.path as osp
import socket
import sys
from typing import Optional

LOCK_NAME = '.lock'


class WorkDirBusyError(RuntimeError):
    """The work dir is locked by another live training."""


class WorkDirLock:
    """Exclusive lock of a work dir (see the module docstring); a context
    manager, or :meth:`acquire` / :meth:`release`.

    Args:
        work_dir (str): The folder (created if missing).
        what (str): What holds it, for the other run's message. Defaults to
            'training'.
    """

    def __init__(self, work_dir: str, what: str = 'training') -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self.what = what
        self._fd: Optional[int] = None

    def acquire(self) -> 'WorkDirLock':
        import fcntl
        os.makedirs(self.work_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 4096).decode(errors='replace').strip()
            os.close(fd)
            raise WorkDirBusyError(
                f'work dir {self.work_dir} is in use by another run '
                f'({holder or "holder unknown"}): two runs in one work dir '
                'would overwrite each other\'s checkpoints and '
                'last_checkpoint. Give this one another --work-dir, or '
                'wait for the other to end') from None
        started = datetime.datetime.now().isoformat(timespec='seconds')
        command = ' '.join([osp.basename(sys.executable)] + sys.argv)
        os.ftruncate(fd, 0)
        os.write(
            fd,
            (f'{self.what}: pid {os.getpid()} on {socket.gethostname()}, '
             f'started {started}, command: {command}\n').encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
