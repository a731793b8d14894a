"""Bad input through the command-line tools stops before any work, with the
problem named: weights that cannot be fetched, a checkpoint that does not
fit the config, a head with the wrong number of classes. The tools run in
this process (``run_tool_here``), with their own argv, directory and
streams."""
import os.path as osp

import pytest
import torch
from helpers.tool_runs import run_tool_here
from mmdet.registry import MODELS
from mmengine.config import Config

from rfcn_mm.datasets import make_synthetic_voc

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs', 'rfcn')
SYNTHETIC = osp.join(CONFIGS, 'rfcn_r18_synthetic-voc.py')
UNREACHABLE = 'http://127.0.0.1:9/resnet101-offline-test.pth'


# the tools outside tools/ itself, mmdet's layout
FOLDERS = {'export.py': 'deployment', 'vis_score_maps.py': 'analysis_tools'}


def _tool(name, *args, cwd, env=None):
    return run_tool_here(
        osp.join(ROOT, 'tools', FOLDERS.get(name, ''), name),
        *args,
        cwd=cwd,
        env=env)


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    make_synthetic_voc(str(root / 'data' / 'synthetic_voc'), num_train=6,
                       num_test=4, seed=0)
    return root


def test_offline_pretrained_weights_stop_training_before_it_starts(
        tmp_path):
    import os
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch'))
    proc = _tool(
        'train.py', osp.join(CONFIGS, 'rfcn_r101_voc0712.py'), '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={UNREACHABLE}',
        f'model.roi_head.shared_head.init_cfg.checkpoint={UNREACHABLE}',
        cwd=str(tmp_path), env=env)
    assert proc.returncode != 0
    err = proc.stderr
    assert f'model.backbone.init_cfg.checkpoint = {UNREACHABLE}' in err
    assert osp.join(str(tmp_path / 'torch'), 'hub', 'checkpoints',
                    'resnet101-offline-test.pth') in err
    assert '--from-scratch' in err
    # stopped before the runner was built: nothing was logged or written
    assert not (tmp_path / 'work').exists()


def test_from_scratch_trains_with_nothing_frozen(synthetic, tmp_path):
    """--from-scratch on a config with frozen pretrained layers: the run
    trains, and every BatchNorm of the saved model learned."""
    proc = _tool(
        'train.py', SYNTHETIC, '--from-scratch', '--work-dir',
        str(tmp_path), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=2',
        'model.backbone.frozen_stages=1', 'model.backbone.norm_eval=True',
        'model.backbone.norm_cfg.requires_grad=False',
        'train_dataloader.num_workers=0', 'train_dataloader.batch_size=2',
        cwd=str(synthetic))
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = torch.load(tmp_path / 'iter_1.pth')['state_dict']
    second = torch.load(tmp_path / 'iter_2.pth')['state_dict']
    # conv1 and its BN (the stage the options froze) learned in step 2
    for key in ('backbone.conv1.weight', 'backbone.bn1.weight',
                'backbone.bn1.running_mean'):
        assert not torch.equal(first[key], second[key]), key


def _checkpoint_of(path, **model_changes):
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(SYNTHETIC)
    cfg.merge_from_dict(model_changes)
    model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)


def test_test_py_refuses_a_checkpoint_of_another_class_count(
        synthetic, tmp_path):
    ckpt = tmp_path / 'six_classes.pth'
    _checkpoint_of(ckpt, **{'model.roi_head.bbox_head.num_classes': 6})
    proc = _tool(
        'test.py', SYNTHETIC, str(ckpt), '--eval', 'mAP', '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        'test_dataloader.num_workers=0', cwd=str(synthetic))
    assert proc.returncode != 0
    err = proc.stderr
    assert 'six_classes.pth: the checkpoint does not fit' in err
    assert 'roi_head.bbox_head.' in err and 'checkpoint (' in err
    assert 'pascal_voc/mAP' not in proc.stdout


@pytest.mark.parametrize('num_classes', [3, 5])
def test_head_class_count_that_differs_from_the_dataset_stops_training(
        synthetic, tmp_path, num_classes):
    proc = _tool(
        'train.py', SYNTHETIC, '--work-dir', str(tmp_path), '--cfg-options',
        f'model.roi_head.bbox_head.num_classes={num_classes}',
        'train_dataloader.num_workers=0', cwd=str(synthetic))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert (f'model.roi_head.bbox_head.num_classes is {num_classes} but '
            'train_dataloader.dataset') in last, proc.stderr[-3000:]
    assert 'Iter(train)' not in proc.stdout


def _an_image(root):
    import glob
    return sorted(
        glob.glob(
            osp.join(str(root), 'data', 'synthetic_voc', 'VOC2007',
                     'JPEGImages', '*.jpg')))[0]


def test_vis_score_maps_refuses_a_checkpoint_that_does_not_fit(
        synthetic, tmp_path):
    ckpt = tmp_path / 'six_classes.pth'
    _checkpoint_of(ckpt, **{'model.roi_head.bbox_head.num_classes': 6})
    proc = _tool(
        'vis_score_maps.py', SYNTHETIC, str(ckpt), _an_image(synthetic),
        '--out', str(tmp_path / 'maps.png'), cwd=str(synthetic))
    assert proc.returncode != 0
    assert 'six_classes.pth does not fit' in proc.stderr
    assert 'checkpoint (' in proc.stderr
    assert not (tmp_path / 'maps.png').exists()


@pytest.mark.parametrize('roi', [('nan', '0', '5', '5'), ('9', '0', '5', '5')])
def test_vis_score_maps_names_a_bad_roi(roi, tmp_path):
    proc = _tool('vis_score_maps.py', SYNTHETIC, 'any.pth', 'any.jpg',
                 '--roi', *roi, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert '--roi must be finite with X1 < X2 and Y1 < Y2' in proc.stderr


@pytest.mark.parametrize('kind', ['text', 'onnx'])
@pytest.mark.parametrize('tool', ['export.py', 'vis_score_maps.py', 'test.py'])
def test_a_file_that_is_not_a_checkpoint_is_named(synthetic, tmp_path, tool,
                                                  kind):
    """A text file or an exported ONNX model given as the checkpoint: the
    tool stops naming the file and what it is (before: torch's KeyError or
    its advice to load with weights_only=False)."""
    ckpt = tmp_path / f'model.{"txt" if kind == "text" else "onnx"}'
    if kind == 'text':
        ckpt.write_text('epochs: 12\n')
    else:  # what an ONNX file starts with: ir_version, producer_name
        ckpt.write_bytes(b'\x08\x08\x12\x07pytorch\x1a\x052.13' + bytes(64))
    args = {
        'export.py': ('--format', 'pt2', '--out', str(tmp_path / 'm.pt2')),
        'vis_score_maps.py': (_an_image(synthetic), '--out',
                              str(tmp_path / 'maps.png')),
        'test.py': ('--work-dir', str(tmp_path / 'work'), '--cfg-options',
                    'test_dataloader.num_workers=0'),
    }[tool]
    proc = _tool(tool, SYNTHETIC, str(ckpt), *args, cwd=str(synthetic))
    assert proc.returncode == 1
    what = 'a text file' if kind == 'text' else 'an ONNX model'
    assert f'{ckpt} is not a checkpoint: it is {what}' in proc.stderr, \
        proc.stderr[-3000:]
    assert 'weights_only' not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.name] + (
        ['work'] if tool == 'test.py' else [])


def test_amp_on_a_machine_without_a_gpu_is_refused(synthetic, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('a GPU is visible: --amp is allowed')
    proc = _tool('train.py', SYNTHETIC, '--amp', '--work-dir',
                 str(tmp_path / 'work'), cwd=str(synthetic))
    assert proc.returncode == 1
    assert '--amp needs a CUDA GPU' in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / 'work').exists()
