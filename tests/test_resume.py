"""A training run killed with SIGKILL resumes from its last checkpoint with
iteration count, optimizer and scheduler state intact: the killed-and-resumed
run ends bit-for-bit where an uninterrupted run ends."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
HELPERS = osp.join(ROOT, 'tests', 'helpers')
CFG = osp.join(HELPERS, 'tiny_runner_cfg.py')
TRAIN = osp.join(ROOT, 'tools', 'train.py')


def _env(**extra):
    env = dict(os.environ, **extra)
    env['PYTHONPATH'] = os.pathsep.join(
        [HELPERS, ROOT, env.get('PYTHONPATH', '')])
    return env


def _train(work_dir, *extra, env=None):
    cmd = [sys.executable, TRAIN, CFG, '--work-dir', str(work_dir), *extra]
    return subprocess.Popen(
        cmd,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)


def _finish(proc, timeout=240):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    ref_dir, run_dir = tmp_path / 'ref', tmp_path / 'run'
    ref = _train(ref_dir)
    marker = tmp_path / 'stalled'
    victim = _train(
        run_dir, env=_env(TINY_STALL_AT='7', TINY_STALL_MARKER=str(marker)))
    deadline = time.time() + 240
    while not marker.exists():
        assert victim.poll() is None, victim.stdout.read()[-4000:]
        assert time.time() < deadline, 'training never reached iteration 7'
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    # iteration 7 was lost; the last checkpoint is iteration 6
    assert (run_dir / 'iter_6.pth').exists()
    assert not (run_dir / 'iter_8.pth').exists()

    out = _finish(_train(run_dir, '--resume'))
    _finish(ref)
    assert 'resumed epoch: 0, iter: 6' in out, out[-3000:]

    # torch.load with its default weights_only=True: the project's fix
    final = torch.load(run_dir / 'iter_12.pth')
    expected = torch.load(ref_dir / 'iter_12.pth')
    assert final['meta']['iter'] == expected['meta']['iter'] == 12
    for k, v in expected['state_dict'].items():
        torch.testing.assert_close(
            final['state_dict'][k], v, rtol=0, atol=0)
    opt, opt_ref = final['optimizer']['state'], expected['optimizer']['state']
    assert opt.keys() == opt_ref.keys() and len(opt) > 0
    for k in opt_ref:
        torch.testing.assert_close(
            opt[k]['momentum_buffer'],
            opt_ref[k]['momentum_buffer'],
            rtol=0,
            atol=0)
    assert final['param_schedulers'] == expected['param_schedulers']
    assert final['optimizer']['param_groups'][0]['lr'] == pytest.approx(
        expected['optimizer']['param_groups'][0]['lr'])
    # the resumed run did not start over: it logged iterations 7..12 only
    resumed_logs = sorted(run_dir.glob('*/vis_data/scalars.json'))[-1]
    iters = [
        int(line.split('"iter": ')[1].split(',')[0])
        for line in resumed_logs.read_text().splitlines()
        if '"iter": ' in line
    ]
    assert iters[0] == 7 and iters[-1] == 12


def _kill_when(proc, marker, what):
    deadline = time.time() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()[-4000:]
        assert time.time() < deadline, f'training never reached {what}'
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize('max_keep', [1, 2, -1])
def test_sigkill_while_saving_keeps_previous_checkpoint(tmp_path, max_keep):
    """Killed half-way through writing iter_4.pth: iter_2.pth survives, is
    complete, ``last_checkpoint`` names it, and resuming from it ends where
    an uninterrupted run ends (for max_keep 1, mmengine alone deletes
    iter_2.pth before writing iter_4.pth)."""
    keep = f'default_hooks.checkpoint.max_keep_ckpts={max_keep}'
    run_dir = tmp_path / 'run'
    marker = tmp_path / 'stalled'
    victim = _train(
        run_dir, '--cfg-options', keep,
        env=_env(TINY_STALL_SAVE_AT='4', TINY_STALL_MARKER=str(marker)))
    _kill_when(victim, marker, 'the save of iteration 4')
    # the interrupted write left no file named like a checkpoint
    assert not (run_dir / 'iter_4.pth').exists()
    last = (run_dir / 'last_checkpoint').read_text().strip()
    assert osp.basename(last) == 'iter_2.pth' and osp.isfile(last)
    assert torch.load(last)['meta']['iter'] == 2
    if max_keep != 1:
        return  # the resumed run is the same for every max_keep
    out = _finish(_train(run_dir, '--resume', '--cfg-options', keep))
    assert 'resumed epoch: 0, iter: 2' in out, out[-3000:]
    ref_dir = tmp_path / 'ref'
    _finish(_train(ref_dir, '--cfg-options', keep))
    final = torch.load(run_dir / 'iter_12.pth')
    expected = torch.load(ref_dir / 'iter_12.pth')
    for k, v in expected['state_dict'].items():
        torch.testing.assert_close(final['state_dict'][k], v, rtol=0, atol=0)
    # max_keep_ckpts still holds once the new files are complete
    assert sorted(p.name for p in run_dir.glob('iter_*.pth')) == [
        'iter_12.pth'
    ]


def test_resume_falls_back_when_last_checkpoint_is_missing(tmp_path):
    from rfcn_mm import compat
    for step in (2, 4):
        torch.save({'meta': {'iter': step}}, tmp_path / f'iter_{step}.pth')
    (tmp_path / '.iter_6.pth.abc.tmp').write_bytes(b'half')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    assert compat._find_latest_checkpoint(str(tmp_path)) == str(
        tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert compat._find_latest_checkpoint(str(tmp_path)) == str(
        tmp_path / 'iter_2.pth')
    assert compat._find_latest_checkpoint(str(tmp_path / 'none')) is None


def test_resume_in_a_copied_work_dir_uses_its_own_checkpoint(tmp_path):
    """A work dir copied from another: its last_checkpoint names the
    original folder's file, which may have been overwritten by another run
    since; the copy's own file of that name is resumed."""
    from rfcn_mm import compat
    old, new = tmp_path / 'old', tmp_path / 'new'
    for folder in (old, new):
        folder.mkdir()
        torch.save({'meta': {'iter': 4}}, folder / 'iter_4.pth')
    (new / 'last_checkpoint').write_text(str(old / 'iter_4.pth'))
    assert compat._find_latest_checkpoint(str(new)) == str(new / 'iter_4.pth')
    # a file only the other folder has is still found there
    (new / 'last_checkpoint').write_text(str(old / 'iter_6.pth'))
    torch.save({'meta': {'iter': 6}}, old / 'iter_6.pth')
    assert compat._find_latest_checkpoint(str(new)) == str(old / 'iter_6.pth')


def test_resume_in_an_empty_work_dir_says_it_starts_fresh(tmp_path):
    out = _finish(_train(tmp_path, '--resume', '--cfg-options',
                         'train_cfg.max_iters=2'))
    assert f'no checkpoint found in {tmp_path}' in out, out[-3000:]
    assert 'training starts fresh' in out
    assert 'latest checkpoint None' not in out
