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
