"""Deformable-ConvNets' checkpoint names and layouts to rfcn_mm: every
array of ResNet-101 R-FCN (names enumerated here from the symbol's
structure) lands on exactly the keys of the legacy config's model; the
head layouts move as the reference's test code reads them; BatchNorm
parameters and statistics keep their values; unknown arrays are refused by
name; and the command line writes a checkpoint or names what does not
fit."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from helpers.deformable_convnets_names import reference_names
from helpers.mxnet_wire import write_params
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rfcn_mm.converters.deformable_convnets import (convert_params,
                                                    is_deformable)
from rfcn_mm.converters.reference_layers import UnknownLayerError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_mxnet_coco.py')
DCN_CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_dcn_mxnet_coco.py')
TOOL = osp.join(ROOT, 'tools', 'model_converters',
                'deformable_convnets_to_mmdet.py')


def _model_keys(config=CONFIG):
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(config).model)
    return {k for k in model.state_dict() if 'num_batches_tracked' not in k}


@pytest.mark.parametrize('dcn', [False, True])
def test_every_array_lands_on_the_models_keys(dcn):
    params = {n: np.zeros(8, np.float32) for n in reference_names(dcn)}
    params['arg:rfcn_cls_weight'] = np.zeros((81 * 49, 2))
    params['arg:rfcn_cls_bias'] = np.zeros(81 * 49)
    params['arg:rfcn_bbox_weight'] = np.zeros((8 * 49, 2))
    params['arg:rfcn_bbox_bias'] = np.zeros(8 * 49)
    params['arg:rpn_cls_score_weight'] = np.zeros((24, 2))
    params['arg:rpn_cls_score_bias'] = np.zeros(24)
    if dcn:
        params['arg:rfcn_cls_offset_t_weight'] = np.zeros((2 * 81 * 49, 2))
        params['arg:rfcn_cls_offset_t_bias'] = np.zeros(2 * 81 * 49)
    out, report = convert_params(params)
    assert set(out) == _model_keys(DCN_CONFIG if dcn else CONFIG)
    assert is_deformable(params) == dcn
    # resnet_v1_101_rfcn: 110 convolutions, 104 BatchNorms; the DCN symbol
    # adds 3 offset convs in res5 and 2 offset-map convs in the head
    assert report[0].startswith(
        f'{115 if dcn else 110} convolutions, 104 BatchNorms')


def test_deformable_offsets():
    """The res5 offset convs keep their weights; the class offset maps, one
    (x, y) field of k*k bins per class, move the background field last;
    the box offset maps stay as they are."""
    bins, classes = 4, 3
    rng = np.random.default_rng(2)
    cls_off = rng.standard_normal((2 * classes * bins, 5)).astype(np.float32)
    box_off = rng.standard_normal((2 * bins, 5)).astype(np.float32)
    conv_off = rng.standard_normal((72, 6, 3, 3)).astype(np.float32)
    out, report = convert_params(
        {'arg:rfcn_cls_offset_t_weight': cls_off,
         'arg:rfcn_cls_offset_t_bias': cls_off[:, 0],
         'arg:rfcn_bbox_offset_t_weight': box_off,
         'arg:rfcn_bbox_offset_t_bias': box_off[:, 0],
         'arg:res5b_branch2b_offset_weight': conv_off,
         'arg:res5b_branch2b_offset_bias': conv_off[:, 0, 0, 0]}, bins)
    head = 'roi_head.bbox_head.'
    np.testing.assert_array_equal(
        out[head + 'conv_cls_offset.weight'],
        np.concatenate([cls_off[2 * bins:], cls_off[:2 * bins]]))
    np.testing.assert_array_equal(out[head + 'conv_cls_offset.bias'],
                                  out[head + 'conv_cls_offset.weight'][:, 0])
    np.testing.assert_array_equal(out[head + 'conv_reg_offset.weight'],
                                  box_off)
    np.testing.assert_array_equal(
        out['roi_head.shared_head.layer4.1.conv2.conv_offset.weight'],
        conv_off)
    assert any('background offset field' in line for line in report)


def test_head_layouts_and_norms():
    bins, classes, anchors = 4, 3, 2
    rng = np.random.default_rng(0)
    cls_w = rng.standard_normal((classes * bins, 5)).astype(np.float32)
    box_w = rng.standard_normal((8 * bins, 5)).astype(np.float32)
    box_test = box_w * 10
    rpn_w = rng.standard_normal((2 * anchors, 5)).astype(np.float32)
    gamma = rng.random(6).astype(np.float32)
    params = {
        'arg:rfcn_cls_weight': cls_w, 'arg:rfcn_cls_bias': cls_w[:, 0],
        'arg:rfcn_bbox_weight': box_w, 'arg:rfcn_bbox_bias': box_w[:, 0],
        'arg:rfcn_bbox_weight_test': box_test,
        'arg:rfcn_bbox_bias_test': box_test[:, 0],
        'arg:rpn_cls_score_weight': rpn_w, 'arg:rpn_cls_score_bias':
        rpn_w[:, 0], 'arg:bn4b22_branch2c_gamma': gamma,
        'aux:bn4b22_branch2c_moving_var': gamma * 2,
        'arg:res5a_branch1_weight': gamma[:2],
    }
    out, report = convert_params(params, bins)
    # background (block 0) last: classes 1, 2, then 0
    np.testing.assert_array_equal(out['roi_head.bbox_head.conv_cls.weight'],
                                  np.concatenate([cls_w[bins:], cls_w[:bins]]))
    # the _test copy, foreground half (channels 4k^2..8k^2)
    np.testing.assert_array_equal(out['roi_head.bbox_head.conv_reg.weight'],
                                  box_test[4 * bins:])
    np.testing.assert_array_equal(out['rpn_head.rpn_cls.weight'],
                                  rpn_w[anchors:] - rpn_w[:anchors])
    np.testing.assert_array_equal(out['backbone.layer3.22.bn3.weight'], gamma)
    np.testing.assert_array_equal(out['backbone.layer3.22.bn3.running_var'],
                                  gamma * 2)
    assert 'roi_head.shared_head.layer4.0.downsample.0.weight' in out
    assert any('_test copy' in line for line in report)


def test_sigmoid_of_the_difference_is_the_softmax():
    """The converted RPN classifier's sigmoid equals the reference's
    two-way softmax foreground probability on random features."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 7))
    b = rng.standard_normal(6)
    out, _ = convert_params({'arg:rpn_cls_score_weight': w,
                             'arg:rpn_cls_score_bias': b})
    x = rng.standard_normal((50, 7))
    z = x @ w.T + b
    soft = np.exp(z[:, 3:]) / (np.exp(z[:, :3]) + np.exp(z[:, 3:]))
    wd = out['rpn_head.rpn_cls.weight'].astype(np.float64)
    bd = out['rpn_head.rpn_cls.bias'].astype(np.float64)
    np.testing.assert_allclose(1 / (1 + np.exp(-(x @ wd.T + bd))), soft,
                               rtol=1e-5)


@pytest.mark.parametrize('name, message', [
    ('arg:fc1000_weight', "no R-FCN layer of that name"),
    ('arg:res5a_branch2a_offset_weight', 'only the 3x3 convs'),
    ('res2a_branch2a_weight', 'arg:<parameter>'),
    ('arg:res2a_branch2z_weight', 'no R-FCN layer'),
])
def test_unknown_arrays_are_named(name, message):
    with pytest.raises(UnknownLayerError, match=message):
        convert_params({name: np.zeros(2)})


def test_the_tool_names_what_does_not_fit(tmp_path):
    src = tmp_path / 'rfcn_coco-0000.params'
    write_params(src, {'arg:conv1_weight': np.zeros((64, 3, 7, 7)),
                       'arg:res2a_branch2a_weight': np.zeros((64, 32, 1, 1))})
    proc = subprocess.run(
        [sys.executable, TOOL, str(src), str(tmp_path / 'out.pth')],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'backbone.layer1.0.conv1.weight: checkpoint (64, 32, 1, 1), ' \
        'model (64, 64, 1, 1)' in proc.stderr
    assert 'missing from the checkpoint: backbone.bn1.weight' in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_the_tool_picks_the_deformable_config(tmp_path):
    """A file with offset convs is Deformable R-FCN's: checked against
    rfcn_r101_dcn_mxnet_coco.py's model (which has the offset conv)."""
    src = tmp_path / 'rfcn_dcn_coco-0000.params'
    write_params(src, {'arg:res5a_branch2b_offset_weight':
                       np.zeros((72, 512, 1, 1))})
    proc = subprocess.run(
        [sys.executable, TOOL, str(src), str(tmp_path / 'out.pth')],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'rfcn_r101_dcn_mxnet_coco.py' in proc.stdout
    assert ('roi_head.shared_head.layer4.0.conv2.conv_offset.weight: '
            'checkpoint (72, 512, 1, 1), model (72, 512, 3, 3)'
            in proc.stderr)
