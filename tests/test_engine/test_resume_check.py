"""--resume refuses a checkpoint whose run the config no longer describes
(before: a new lr silently ignored, another optimizer failing with
KeyError: 'step', max_iters below the checkpoint's iteration exiting 0
having done nothing), and still resumes a run whose config only allows it
to go on longer."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from rfcn_mm.engine.resume_check import resume_problems

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HELPERS = osp.join(ROOT, 'tests', 'helpers')
CFG = osp.join(HELPERS, 'tiny_runner_cfg.py')


def _train(work_dir, *extra):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [HELPERS, ROOT, env.get('PYTHONPATH', '')])
    return subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), CFG,
         '--work-dir', str(work_dir), *extra],
        env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A run stopped at iteration 4 of its 12 (checkpoints every 2)."""
    work = tmp_path_factory.mktemp('resume')
    proc = _train(work, '--cfg-options', 'train_cfg.max_iters=4')
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


@pytest.mark.parametrize(
    'options, expected',
    [(['optim_wrapper.optimizer.lr=0.1'],
      "optim_wrapper.optimizer.lr: 0.05 then, 0.1 now"),
     (['optim_wrapper.optimizer.type=RMSprop'],
      "optim_wrapper.optimizer.type: 'SGD' then, 'RMSprop' now"),
     (['param_scheduler.1.milestones=[6,10]'],
      'param_scheduler.1.milestones: [5, 9] then, [6, 10] now'),
     (['train_cfg.max_iters=3'],
      'the checkpoint is at iteration 4, beyond train_cfg.max_iters = 3')],
    ids=['lr', 'optimizer-type', 'milestones', 'max-iters'])
def test_resume_with_a_config_that_no_longer_fits_is_refused(
        trained, tmp_path, options, expected):
    work = tmp_path / 'work'
    work.mkdir()
    for name in ('iter_4.pth', ):
        os.link(trained / name, work / name)
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    proc = _train(work, '--resume', '--cfg-options', *options)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f'cannot resume from {work / "iter_4.pth"}' in proc.stderr
    assert expected in proc.stderr, proc.stderr[-3000:]
    assert "KeyError: 'step'" not in proc.stderr
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_4.pth']


def test_a_longer_run_resumes(trained, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    os.link(trained / 'iter_4.pth', work / 'iter_4.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    proc = _train(work, '--resume', '--cfg-options', 'train_cfg.max_iters=6')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / 'iter_6.pth').is_file()
    assert not (work / 'iter_2.pth').exists()  # it went on from 4


def test_problems_found_without_a_saved_config():
    """Checkpoints without mmengine's record of their config are still
    checked for the iteration and the classes."""
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop',
                                     max_iters=10)))
    meta = dict(iter=12, dataset_meta=dict(classes=('a', 'b')))
    problems = resume_problems(None, meta, cfg, classes=('a', 'c'))
    assert len(problems) == 2
    assert 'iteration 12, beyond train_cfg.max_iters = 10' in problems[0]
    assert "classes ('a', 'b'), the training dataset now has ('a', 'c')" in \
        problems[1]
    assert resume_problems(None, dict(iter=10), cfg) == []


def test_a_file_of_weights_only_is_refused_for_resume(tmp_path):
    import torch
    work = tmp_path / 'work'
    work.mkdir()
    torch.save(dict(state_dict=dict(w=torch.ones(1))), work / 'iter_4.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    proc = _train(work, '--resume')
    assert proc.returncode == 1
    assert 'it holds no training state' in proc.stderr, proc.stderr[-2000:]
    assert "KeyError: 'meta'" not in proc.stderr
