"""tools/dist_train.sh runs mmengine's torchrun launcher; two CPU processes
train one model in sync."""
import os
import os.path as osp
import random
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HELPERS = osp.join(ROOT, 'tests', 'helpers')


def _run(work_dir, *extra):
    env = dict(os.environ)
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    env['PYTHONPATH'] = os.pathsep.join([HELPERS, env.get('PYTHONPATH', '')])
    env['PORT'] = str(random.randint(20000, 40000))
    return subprocess.run([
        'bash',
        osp.join(ROOT, 'tools', 'dist_train.sh'),
        osp.join(HELPERS, 'tiny_runner_cfg.py'), '2', '--work-dir',
        str(work_dir), *extra
    ],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_two_processes_train_in_sync(tmp_path):
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [
        (tmp_path / f'rank_{r}.txt').read_text().split(' ', 1)
        for r in (0, 1)
    ]
    assert [w for w, _ in reports] == ['2', '2']
    assert reports[0][1] == reports[1][1]  # DDP kept the replicas equal
    assert (tmp_path / 'iter_12.pth').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='nccl works here')
def test_nccl_without_gpus_names_the_fix(tmp_path):
    proc = _run(tmp_path, '--cfg-options', 'env_cfg.dist_cfg.backend=nccl')
    assert proc.returncode != 0
    assert 'set env_cfg.dist_cfg.backend="gloo"' in proc.stderr


def test_a_nan_loss_on_one_rank_stops_every_rank(tmp_path):
    """Rank 1 alone sees a NaN loss at iteration 5: both processes stop
    there (no rank is left waiting in an all-reduce), no checkpoint of
    iteration 5 or later is written, and the run fails."""
    os.environ['TINY_NAN_AT'], os.environ['TINY_NAN_RANK'] = '5', '1'
    try:
        proc = _run(tmp_path)
    finally:
        del os.environ['TINY_NAN_AT'], os.environ['TINY_NAN_RANK']
    assert proc.returncode != 0
    assert 'non-finite loss at iteration 5: loss = nan' in proc.stderr
    assert 'non-finite loss at iteration 5 on another rank' in proc.stderr
    assert sorted(p.name for p in tmp_path.glob('iter_*.pth')) == [
        'iter_2.pth', 'iter_4.pth'
    ]


def test_a_stalled_rank_fails_the_run_after_the_timeout(tmp_path):
    """One rank stops responding after iteration 3 (it sleeps; a stopped
    process looks the same to its peers): the other fails once it has
    waited env_cfg.dist_cfg.timeout in the next all-reduce, saying so,
    instead of waiting in silence for gloo's 30 minutes."""
    stall = dict(TINY_STALL_AT='3', TINY_STALL_RANK='1',
                 TINY_STALL_MARKER=str(tmp_path / 'stalled'))
    os.environ.update(stall)
    try:
        proc = _run(tmp_path, '--cfg-options', 'env_cfg.dist_cfg.timeout=10')
    finally:
        for key in stall:
            del os.environ[key]
    assert proc.returncode != 0
    assert (tmp_path / 'stalled').exists()
    assert ('waited longer than env_cfg.dist_cfg.timeout = 10 s for the '
            'other ranks' in proc.stderr), proc.stderr[-3000:]


def test_every_config_bounds_the_wait_for_other_ranks():
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py'))
    assert cfg.env_cfg.dist_cfg.timeout == 600
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'  # mmdet's, kept
