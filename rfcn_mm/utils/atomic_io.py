"""Files written whole or not at all.

Every file rfcn_mm writes goes through :func:`atomic_output` (or
:func:`atomic_write` for bytes in memory): checkpoints and
``last_checkpoint`` (through mmengine's file backend, see
:mod:`rfcn_mm.compat`), ``tools/test.py --out`` results, exported models,
drawings, tables and JSON reports. The data goes to a temporary file in the
target's folder, is flushed and fsynced, then renamed over the target, so a
reader, a kill at any moment or a full disk leaves either the old file or
the whole new one, never a fragment.

A temporary file is named ``.<name>.<host>.<pid>.<random>.tmp<ext>`` (its
extension kept, as some writers choose the format by it). A write that
fails removes its own; one whose process was killed cannot, so every write
first removes the temporaries in its folder left by processes of this host
that no longer run.
"""
import contextlib
import os
import os.path as osp
import re
import socket
import tempfile
from typing import Iterator, Union

_STALE = re.compile(r'^\..+\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[^.]+\.tmp'
                    r'(?:\.[^.]*)?$')


def _host() -> str:
    return re.sub(r'[^A-Za-z0-9_-]', '-', socket.gethostname()) or 'host'


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: str) -> int:
    """Remove the temporary files of interrupted writes in ``folder``:
    those named by this module for this host whose process is gone.

    Returns:
        int: How many were removed.
    """
    host = _host()
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        m = _STALE.match(name)
        if m is None or m.group('host') != host:
            continue
        if _process_alive(int(m.group('pid'))):
            continue
        try:
            os.remove(osp.join(folder, name))
            removed += 1
        except OSError:
            pass
    return removed


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: Union[str, os.PathLike]) -> Iterator[str]:
    """Context manager giving a temporary path to write ``path``'s content
    to; when the block ends without an exception the file is fsynced and
    renamed over ``path``, otherwise it is removed and ``path`` is left as
    it was.

    Example::

        with atomic_output('plot.png') as tmp:
            fig.savefig(tmp)
    """
    path = os.fspath(path)
    if osp.isdir(path):
        raise IsADirectoryError(f'cannot write {path}: it is a folder '
                                '(give a file name)')
    folder = osp.dirname(osp.abspath(path))
    base = osp.basename(path)
    ext = osp.splitext(base)[1]
    try:
        os.makedirs(folder, exist_ok=True)
        remove_stale_temporaries(folder)
        fd, tmp = tempfile.mkstemp(
            prefix=f'.{base}.{_host()}.{os.getpid()}.',
            suffix=f'.tmp{ext}',
            dir=folder)
    except OSError as e:
        raise type(e)(e.errno, f'cannot write {path}: {e.strerror} (in '
                      f'{folder})') from None
    os.close(fd)
    try:
        yield tmp
        if not osp.isfile(tmp):
            raise FileNotFoundError(f'nothing was written for {path}')
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def atomic_write(data: Union[bytes, str], path: Union[str,
                                                      os.PathLike]) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` whole or not at
    all (see :func:`atomic_output`)."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    with atomic_output(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
