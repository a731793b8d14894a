"""tools/analysis_tools/pretrain_synthetic_backbone.py: the checkpoint it
writes initialises the R-FCN's backbone and conv5 head through the
config the alternating study writes, as ImageNet weights do."""
import argparse
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from helpers.tool_runs import run_tool_here
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools',
                'pretrain_synthetic_backbone.py')


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pretrain = _load('pretrain_synthetic_backbone', TOOL)
study = _load('alternating_study',
              osp.join(ROOT, 'tools', 'analysis_tools',
                       'alternating_study.py'))


def test_the_checkpoint_initialises_the_rfcn_backbone_and_conv5(tmp_path):
    ckpt = tmp_path / 'pretrained_r18.pth'
    proc = run_tool_here(TOOL, str(ckpt), '--iters', '2', '--batch-size',
                         '2', '--size', '64', '--num-val', '4', cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'held-out accuracy' in proc.stdout
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert saved['meta']['iters'] == 2 and saved['meta']['depth'] == 18
    assert 0 <= saved['meta']['val_accuracy'] <= 1
    weights = saved['state_dict']
    assert 'layer4.1.conv2.weight' in weights

    # the study reuses it (no second pretraining) and writes the config
    args = argparse.Namespace(work_dir=str(tmp_path), depth=18,
                              pretrain_iters=2)
    config, record = study._pretrained_config(args, study.CONFIG)
    assert record['iters'] == 2
    assert study._init_words(dict(pretrained=record)).startswith(
        'pretrained (2 iterations')

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    backbone = model.backbone.state_dict()
    conv5 = model.roi_head.shared_head.state_dict()
    for key in ('conv1.weight', 'bn1.running_mean', 'layer1.0.conv1.weight',
                'layer3.1.conv2.weight', 'layer3.0.downsample.1.weight'):
        torch.testing.assert_close(backbone[key], weights[key], rtol=0,
                                   atol=0)
    # conv5 is the dilated, stride-1 shared head: same weights
    for key in ('layer4.0.conv1.weight', 'layer4.1.bn2.running_var',
                'layer4.0.downsample.0.weight'):
        torch.testing.assert_close(conv5[key], weights[key], rtol=0, atol=0)
    assert model.roi_head.shared_head.layer4[0].conv1.stride == (1, 1)


@pytest.mark.parametrize('bgr_to_rgb', [True, False])
def test_images_are_normalised_as_the_detector_normalises(bgr_to_rgb):
    cfg = Config(dict(model=dict(data_preprocessor=dict(
        mean=[10., 20., 30.], std=[2., 4., 5.], bgr_to_rgb=bgr_to_rgb))))
    rgb = np.array([[[[50, 60, 70]]]], dtype=np.uint8)  # one RGB pixel
    x = pretrain._normaliser(cfg)(rgb).flatten().tolist()
    # the detector reads BGR; with bgr_to_rgb it normalises R, G, B,
    # without it B, G, R
    first, second, third = (50, 60, 70) if bgr_to_rgb else (70, 60, 50)
    assert x == [(first - 10) / 2, (second - 20) / 4, (third - 30) / 5]


def test_bad_arguments_are_refused_by_name(tmp_path):
    out = str(tmp_path / 'x.pth')
    proc = run_tool_here(TOOL, out, '--iters', '0', cwd=ROOT)
    assert proc.returncode == 2 and '--iters must be at least 1' in \
        proc.stderr
    proc = run_tool_here(TOOL, out, '--config', 'nope.py', cwd=ROOT)
    assert proc.returncode == 1 and 'config file not found: nope.py' in \
        proc.stderr
    assert not osp.exists(out)
