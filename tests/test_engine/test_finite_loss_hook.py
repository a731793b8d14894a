"""Training stops at the first non-finite loss, naming the iteration and
the loss term, before that iteration's weights are saved."""
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import HOOKS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HELPERS = osp.join(ROOT, 'tests', 'helpers')


def _runner(it):
    return SimpleNamespace(iter=it, work_dir='work_dirs/x')


def test_finite_losses_pass_and_the_first_bad_term_is_named():
    hook = HOOKS.build(dict(type='FiniteLossHook'))
    ok = dict(loss=torch.tensor(1.5), loss_cls=torch.tensor(0.5))
    hook.after_train_iter(_runner(3), 0, outputs=ok)
    bad = dict(
        loss=torch.tensor(float('nan')),
        loss_cls=torch.tensor(0.5),
        loss_bbox=torch.tensor(float('inf')),
        acc=torch.tensor(90.))
    with pytest.raises(FloatingPointError) as err:
        hook.after_train_iter(_runner(6), 0, outputs=bad)
    msg = str(err.value)
    assert 'non-finite loss at iteration 7' in msg
    assert 'loss = nan' in msg and 'loss_bbox = inf' in msg
    assert 'loss_cls' not in msg and 'acc' not in msg


def test_hook_runs_before_the_checkpoint_hook():
    from mmengine.hooks import CheckpointHook, LoggerHook
    from mmengine.runner.priority import get_priority
    hook = HOOKS.build(dict(type='FiniteLossHook'))
    assert get_priority(hook.priority) < get_priority(
        CheckpointHook.priority) and get_priority(
            hook.priority) < get_priority(LoggerHook.priority)


def test_diverging_training_stops_without_saving_bad_weights(tmp_path):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [HELPERS, ROOT, env.get('PYTHONPATH', '')])
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'),
        osp.join(HELPERS, 'tiny_runner_cfg.py'), '--work-dir',
        str(tmp_path), '--cfg-options', 'optim_wrapper.optimizer.lr=300',
        'param_scheduler=[]'
    ]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert 'FloatingPointError: non-finite loss at iteration' in last, \
        proc.stderr[-3000:]
    bad_iter = int(last.split('at iteration ')[1].split(':')[0])
    saved = sorted(tmp_path.glob('iter_*.pth'))
    assert saved, 'expected checkpoints before the divergence'
    for path in saved:
        ckpt = torch.load(path)
        assert ckpt['meta']['iter'] < bad_iter
        for v in ckpt['state_dict'].values():
            assert torch.isfinite(v).all(), path
