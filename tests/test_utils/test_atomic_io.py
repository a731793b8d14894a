"""rfcn_mm.utils.atomic_io: a file is written whole or not at all, and the
temporaries of writers that were killed are cleaned up."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rfcn_mm.utils.atomic_io import (atomic_output, atomic_write,
                                     remove_stale_temporaries)


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if '.tmp' in n)


def test_writes_bytes_and_text_and_replaces_the_old_file(tmp_path):
    path = tmp_path / 'sub' / 'a.json'
    atomic_write('{"a": 1}', path)
    assert path.read_text() == '{"a": 1}'
    atomic_write(b'\x00\x01', path)
    assert path.read_bytes() == b'\x00\x01'
    assert _temporaries(tmp_path / 'sub') == []


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'good model')
    with pytest.raises(RuntimeError, match='writer failed'):
        with atomic_output(path) as tmp:
            assert tmp.endswith('.onnx')  # writers that go by the extension
            with open(tmp, 'wb') as f:
                f.write(b'half a mod')
            raise RuntimeError('writer failed')
    assert path.read_bytes() == b'good model'
    assert _temporaries(tmp_path) == []


def test_a_writer_that_wrote_nothing_is_an_error(tmp_path):
    path = tmp_path / 'plot.png'
    with pytest.raises(FileNotFoundError, match='nothing was written'):
        with atomic_output(path) as tmp:
            os.remove(tmp)
    assert not path.exists()


def test_a_full_disk_fails_cleanly(tmp_path):
    """Under a file-size limit (what a full disk looks like to a writer)
    the write raises OSError, the old file stays and no temporary is
    left."""
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(b'old checkpoint')
    code = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from rfcn_mm.utils.atomic_io import atomic_write
        try:
            atomic_write(b'x' * 100000, {str(path)!r})
        except OSError as e:
            print('OSError', e.errno)
    """)
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'OSError' in proc.stdout
    assert path.read_bytes() == b'old checkpoint'
    assert _temporaries(tmp_path) == []


def test_a_killed_writer_leaves_the_old_file_and_the_next_write_cleans_up(
        tmp_path):
    path = tmp_path / 'iter_100.pth'
    path.write_bytes(b'old')
    ready = tmp_path / 'ready'
    code = textwrap.dedent(f"""
        import time
        from rfcn_mm.utils.atomic_io import atomic_output
        with atomic_output({str(path)!r}) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'partial')
                f.flush()
                open({str(ready)!r}, 'w').close()
                time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, '-c', code])
    try:
        deadline = time.time() + 60
        while not ready.exists():
            assert child.poll() is None and time.time() < deadline
            time.sleep(0.05)
        # a live writer's temporary is not touched
        assert remove_stale_temporaries(str(tmp_path)) == 0
        assert len(_temporaries(tmp_path)) == 1
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert path.read_bytes() == b'old'
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith('.iter_100.pth.')
    # the next write into the folder (any file) removes it
    atomic_write(b'new', tmp_path / 'last_checkpoint')
    assert _temporaries(tmp_path) == []
    assert path.read_bytes() == b'old'


def test_only_this_hosts_dead_writers_temporaries_are_removed(tmp_path):
    other_host = tmp_path / '.a.pth.otherhost.1.abc.tmp.pth'
    other_host.write_bytes(b'')
    unrelated = tmp_path / 'notes.tmp'
    unrelated.write_bytes(b'')
    from rfcn_mm.utils.atomic_io import _host
    mine_alive = tmp_path / f'.a.pth.{_host()}.{os.getpid()}.abc.tmp.pth'
    mine_alive.write_bytes(b'')
    remove_stale_temporaries(str(tmp_path))
    assert other_host.exists() and unrelated.exists() and mine_alive.exists()


def test_a_target_that_cannot_be_written_is_named(tmp_path):
    folder = tmp_path / 'results.json'
    folder.mkdir()
    with pytest.raises(IsADirectoryError,
                       match=r'cannot write .*results.json: it is a folder'):
        atomic_write(b'{}', folder)


@pytest.mark.skipif(
    os.geteuid() == 0, reason='root writes into read-only folders')
def test_a_read_only_folder_is_named(tmp_path):
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError,
                           match=r'cannot write .*ro/a.pt2: Permission'):
            atomic_write(b'x', ro / 'a.pt2')
    finally:
        ro.chmod(0o700)
