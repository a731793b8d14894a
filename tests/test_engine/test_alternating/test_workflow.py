"""The workflow's bookkeeping without training: how stages are launched, a
failing stage named with its log, and what counts as a finished stage."""
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from rfcn_mm.engine.alternating import (AlternatingStageError,
                                        AlternatingTraining)
from rfcn_mm.engine.alternating.workflow import (STATE_FILE, _sha256,
                                                 launch_command)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'configs', 'rfcn',
                  'rfcn_r18_synthetic-voc.py')


def _workflow(work_dir, tools_dir, **kwargs):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(work_dir)
    return AlternatingTraining(cfg, CONFIG, str(tools_dir),
                               log=lambda line: None, **kwargs)


def test_launchers(monkeypatch):
    monkeypatch.setenv('PORT', '29612')
    monkeypatch.setenv('SRUN_ARGS', '--exclusive --mem=0')
    assert launch_command('t/train.py', ['c.py'], 'none', 1) == [
        sys.executable, 't/train.py', 'c.py'
    ]
    assert launch_command('t/train.py', ['c.py'], 'pytorch', 8) == [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=8',
        '--master_port=29612', 't/train.py', 'c.py', '--launcher', 'pytorch'
    ]
    assert launch_command('t/test.py', ['c.py', 'x.pth'], 'slurm', 1) == [
        'srun', '--kill-on-bad-exit=1', '--exclusive', '--mem=0',
        sys.executable, '-u', 't/test.py', 'c.py', 'x.pth', '--launcher',
        'slurm'
    ]
    with pytest.raises(ValueError, match='mpi'):
        launch_command('t/train.py', [], 'mpi', 1)


FAILING_TRAIN = """
import os, sys
work_dir = sys.argv[sys.argv.index('--work-dir') + 1]
run = os.path.join(work_dir, '20260101_000000')
os.makedirs(run, exist_ok=True)
open(os.path.join(run, '20260101_000000.log'), 'w').write('boom')
sys.exit(3)
"""


def test_a_failing_stage_stops_the_workflow_naming_it_and_its_log(tmp_path):
    tools = tmp_path / 'tools'
    tools.mkdir()
    (tools / 'train.py').write_text(FAILING_TRAIN)
    workflow = _workflow(tmp_path / 'wd', tools)
    with pytest.raises(AlternatingStageError) as e:
        workflow.run()
    message = str(e.value)
    # the synthetic config trains from scratch
    assert 'stage 1/4 rpn1 (RPN from random init) failed in training' \
        in message
    assert 'exit status 3' in message
    assert message.endswith(
        osp.join(str(tmp_path), 'wd', 'rpn1', '20260101_000000',
                 '20260101_000000.log'))
    # the stage's config was written for the user to inspect or rerun
    assert (tmp_path / 'wd' / 'rpn1' / 'rpn1_config.py').exists()
    state = json.loads((tmp_path / 'wd' / STATE_FILE).read_text())
    assert state['stages'] == {}


def test_a_stage_is_finished_only_with_its_files_whole(tmp_path):
    workflow = _workflow(tmp_path / 'wd', tmp_path)
    stage = workflow.variant.stage('rpn1')
    ckpt = tmp_path / 'iter_150.pth'
    ckpt.write_bytes(b'x' * 100)
    proposals = tmp_path / 'proposals_train_0.pkl'
    proposals.write_bytes(b'p' * 50)
    workflow.state = dict(stages=dict(rpn1=dict(
        checkpoint=str(ckpt), size=100,
        proposal_files={str(proposals): _sha256(str(proposals))})))
    assert workflow._finished(stage)
    proposals.write_bytes(b'p' * 25)  # half-written, or replaced
    assert not workflow._finished(stage)
    proposals.write_bytes(b'p' * 50)
    ckpt.write_bytes(b'x' * 60)
    assert not workflow._finished(stage)
    ckpt.unlink()
    assert not workflow._finished(stage)
    assert not workflow._finished(workflow.variant.stage('rfcn1'))


def test_a_work_dir_of_the_other_variant_is_refused(tmp_path):
    (tmp_path / 'wd').mkdir()
    (tmp_path / 'wd' / STATE_FILE).write_text(
        json.dumps(dict(variant='5-stage', stages={})))
    workflow = _workflow(tmp_path / 'wd', tmp_path, variant='4-step')
    with pytest.raises(AlternatingStageError, match='holds a 5-stage run'):
        workflow.run(resume=True)
    (tmp_path / 'wd' / STATE_FILE).write_text('{"variant": "4-st')
    with pytest.raises(AlternatingStageError, match='cannot be read'):
        workflow.run(resume=True)
