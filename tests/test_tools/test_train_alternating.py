"""tools/train_alternating.py end to end on the synthetic data (4 short
stages): the stages share conv1-conv4 bit for bit, frozen layers have no
optimizer state, the merged model is stage 3's RPN and stage 4's R-FCN and
loads into the plain config, and a SIGKILL in stage 3 followed by
``--resume`` skips stages 1-2 and ends exactly where an uninterrupted run
ends."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rfcn_mm.datasets import make_synthetic_voc
from rfcn_mm.engine.alternating import shared_layers_difference

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HELPERS = osp.join(ROOT, 'tests', 'helpers')
TOOL = osp.join(ROOT, 'tools', 'train_alternating.py')
SYNTHETIC = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')
CONFIG = f"""
_base_ = '{ROOT}/configs/rfcn/rfcn_r18_synthetic-voc.py'
custom_imports = dict(imports=['rfcn_mm', 'tiny_runner'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='NumClassesCheckHook'),
                dict(type='FiniteLossHook'), dict(type='StallHook')]
alternating_cfg = dict(
    rpn=dict(max_iters=4, milestones=[3], checkpoint_interval=2,
             warmup_iters=1),
    rfcn=dict(max_iters=4, milestones=[3], checkpoint_interval=2,
              warmup_iters=1),
    stages=dict(_delete_=True))
default_hooks = dict(logger=dict(interval=1))
train_dataloader = dict(batch_size=2)
"""


def _env(**extra):
    env = dict(os.environ, **extra)
    env['PYTHONPATH'] = os.pathsep.join(
        [HELPERS, ROOT, env.get('PYTHONPATH', '')])
    return env


def _start(root, work_dir, *extra, env=None):
    return subprocess.Popen(
        [sys.executable, TOOL, 'alt.py', '--work-dir', work_dir, *extra],
        cwd=root,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True)


def _finish(proc, timeout=400):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-5000:]
    return out


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp('alternating')
    make_synthetic_voc(
        str(root / 'data' / 'synthetic_voc'), num_train=8, num_test=4)
    (root / 'alt.py').write_text(CONFIG)
    return root


@pytest.fixture(scope='module')
def reference(root):
    """An uninterrupted 4-step run; its output and work dir."""
    out = _finish(_start(root, 'ref'))
    return out, root / 'ref'


def test_stages_share_conv1_to_conv4_and_the_merge_joins_them(reference):
    _, wd = reference
    rpn2 = _state(wd / 'rpn2' / 'iter_4.pth')['state_dict']
    rfcn1 = _state(wd / 'rfcn1' / 'iter_4.pth')['state_dict']
    rfcn2 = _state(wd / 'rfcn2' / 'iter_4.pth')['state_dict']
    final = _state(wd / 'final.pth')['state_dict']
    rpn1 = _state(wd / 'rpn1' / 'iter_4.pth')['state_dict']
    # stage 3 and 4 froze the layers stage 2 trained, the merge kept them
    assert shared_layers_difference(rpn2, rfcn1) is None
    assert shared_layers_difference(rfcn2, rfcn1) is None
    assert shared_layers_difference(final, rpn2) is None
    # ... and stage 1's RPN trained its own (the synthetic config trains
    # the backbone from scratch), which the workflow left behind
    assert shared_layers_difference(rpn1, rfcn1) is not None
    # the merged RPN is stage 3's, the merged head stage 4's
    heads = {k[len('bbox_head.'):]: v for k, v in rpn2.items()
             if k.startswith('bbox_head.')}
    assert {k[len('rpn_head.'):] for k in final
            if k.startswith('rpn_head.')} == set(heads)
    for k, v in heads.items():
        assert torch.equal(final['rpn_head.' + k], v)
    for k, v in rfcn2.items():
        if k.startswith('roi_head.'):
            assert torch.equal(final[k], v)
    # stage 4 trained conv5 and the head
    assert any(not torch.equal(rfcn2[k], rfcn1[k]) for k in rfcn2
               if k.startswith('roi_head.shared_head.'))


def _state_shapes(ckpt):
    return Counter(
        tuple(s['momentum_buffer'].shape)
        for s in ckpt['optimizer']['state'].values())


def test_frozen_layers_get_no_optimizer_state(reference):
    _, wd = reference
    rpn2 = _state(wd / 'rpn2' / 'iter_4.pth')
    heads = Counter(
        tuple(v.shape) for k, v in rpn2['state_dict'].items()
        if k.startswith('bbox_head.'))
    assert _state_shapes(rpn2) == heads  # the RPN head's and nothing else
    rfcn2 = _state(wd / 'rfcn2' / 'iter_4.pth')
    init_default_scope('mmdet')
    model = MODELS.build(
        Config.fromfile(osp.join(wd, 'rfcn2', 'rfcn2_config.py'),
                        import_custom_modules=False).model)
    model.train()
    trainable = Counter(
        tuple(p.shape) for p in model.parameters() if p.requires_grad)
    assert trainable == Counter(
        tuple(p.shape) for p in model.roi_head.parameters())
    assert _state_shapes(rfcn2) == trainable


def test_the_final_model_loads_into_the_plain_config(reference, root):
    out, wd = reference
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(SYNTHETIC).model)
    final = _state(wd / 'final.pth')
    result = model.load_state_dict(final['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert final['meta']['dataset_meta']['classes'] == (
        'rectangle', 'ellipse', 'triangle', 'cross')
    assert 'evaluate: python tools/test.py alt.py' in out
    test = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools', 'test.py'), SYNTHETIC,
        str(wd / 'final.pth'), '--eval', 'mAP', '--work-dir', 'eval'
    ], cwd=root, env=_env(), capture_output=True, text=True, timeout=300)
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'pascal_voc/mAP' in test.stdout + test.stderr


def test_each_stage_reports_time_losses_and_recall(reference):
    out, _ = reference
    for n, name in enumerate(['rpn1', 'rfcn1', 'rpn2', 'rfcn2'], 1):
        line = next(text for text in out.splitlines()
                    if text.startswith(f'[alternating 4-step] stage {n}/4 '
                                       f'{name} done in'))
        assert 'loss' in line, line
        if name.startswith('rpn'):
            assert 'proposal recall (train, top 300) IoU 0.5 ' in line
            assert '(8 images)' in line
        assert f'[alternating 4-step] {n}/4 stages done' in out


def test_sigkill_in_stage_3_then_resume_matches(reference, root, tmp_path):
    _, ref = reference
    marker = tmp_path / 'stalled'
    log = tmp_path / 'killed.log'
    with open(log, 'w') as f:  # not a pipe: nobody reads it meanwhile
        victim = subprocess.Popen(
            [sys.executable, TOOL, 'alt.py', '--work-dir', 'killed'],
            cwd=root,
            env=_env(
                TINY_STALL_AT='3',
                TINY_STALL_WORK_DIR='rpn2',
                TINY_STALL_MARKER=str(marker)),
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.time() + 400
        while not marker.exists():
            assert victim.poll() is None, log.read_text()[-4000:]
            assert time.time() < deadline, 'stage 3 never reached iter 3'
            time.sleep(0.2)
        os.killpg(victim.pid, signal.SIGKILL)  # the workflow and its stage
        victim.wait()
    wd = root / 'killed'
    assert (wd / 'rpn2' / 'iter_2.pth').exists()
    assert not (wd / 'rpn2' / 'iter_4.pth').exists()
    runs_before = {s: len(list((wd / s).glob('2*_*'))) for s in
                   ('rpn1', 'rfcn1')}

    out = _finish(_start(root, 'killed', '--resume'))
    assert 'stage 1/4 rpn1 finished before: skipped' in out
    assert 'stage 2/4 rfcn1 finished before: skipped' in out
    assert 'resumed epoch: 0, iter: 2' in out  # stage 3 from iteration 2
    assert {s: len(list((wd / s).glob('2*_*'))) for s in
            ('rpn1', 'rfcn1')} == runs_before  # nothing of 1-2 ran again
    resumed = _state(wd / 'final.pth')['state_dict']
    straight = _state(ref / 'final.pth')['state_dict']
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert torch.equal(resumed[k], straight[k]), k
