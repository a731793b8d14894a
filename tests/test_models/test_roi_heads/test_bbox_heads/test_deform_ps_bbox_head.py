"""Deformable R-FCN's head and deformable conv5: zero offsets after every
kind of initialisation, and an untrained deformable head equal to the
plain PS RoI Align head (the oracle)."""
import copy

import pytest
import torch
from helpers.tiny_rfcn import make_batch, tiny_model_cfg
from mmcv.ops import DeformConv2dPack
from mmdet.registry import MODELS

from rfcn_mm.models import DeformPSBBoxHead

DEFORM_POOL = dict(
    type='DeformPSRoIPool', output_size=3, sample_per_part=2, trans_std=0.1)
DCN = dict(type='DCN', deform_groups=4, fallback_on_stride=False)


def deform_cfg(pool=True, dcn=False, class_agnostic_offsets=False):
    cfg = tiny_model_cfg(k=3)
    if pool:
        cfg.roi_head.bbox_roi_extractor.roi_layer = dict(DEFORM_POOL)
        cfg.roi_head.bbox_head.type = 'DeformPSBBoxHead'
        cfg.roi_head.bbox_head.class_agnostic_offsets = \
            class_agnostic_offsets
    if dcn:
        # mmdet's DCN needs bottleneck blocks: ResNet-50 (conv4 1024 and
        # conv5 2048 channels)
        cfg.backbone.depth = cfg.roi_head.shared_head.depth = 50
        cfg.rpn_head.in_channels = 1024
        cfg.roi_head.bbox_head.in_channels = 2048
        cfg.roi_head.shared_head.dcn = dict(DCN)
    return cfg


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def offset_layers(model):
    head = model.roi_head.bbox_head
    layers = []
    if isinstance(head, DeformPSBBoxHead):
        layers += [head.conv_cls_offset, head.conv_reg_offset]
    layers += [
        m.conv_offset for m in model.roi_head.modules()
        if isinstance(m, DeformConv2dPack)
    ]
    return layers


def assert_zero_offsets(model, expected):
    layers = offset_layers(model)
    assert len(layers) == expected
    for conv in layers:
        assert conv.weight.abs().sum() == 0 and conv.bias.abs().sum() == 0


@pytest.mark.parametrize('pool, dcn, expected', [(True, False, 2),
                                                 (False, True, 3),
                                                 (True, True, 5)])
def test_offsets_are_zero_after_init_weights_without_pretrained(
        pool, dcn, expected):
    # init_cfg=None on the shared head: mmdet's ResLayer falls back to
    # Kaiming for every Conv2d, the offset convs included, unless kept 0
    model = build(deform_cfg(pool, dcn))
    assert_zero_offsets(model, expected)
    # the other new layers are initialised (not zero)
    assert model.roi_head.bbox_head.conv_cls.weight.abs().sum() > 0


def test_offsets_are_zero_after_init_weights_with_pretrained(tmp_path):
    """A plain R-FCN checkpoint as the model's Pretrained init: the offset
    layers are not in it and must stay zero."""
    plain = build(deform_cfg(pool=False, dcn=True))
    for m in plain.modules():  # a plain R-FCN R-50: no offset convs
        if isinstance(m, DeformConv2dPack):
            del m.conv_offset
    ckpt = tmp_path / 'plain.pth'
    torch.save(
        dict(state_dict={
            k: v
            for k, v in plain.state_dict().items() if 'conv_offset' not in k
        }), ckpt)
    cfg = deform_cfg(True, True)
    cfg.init_cfg = dict(type='Pretrained', checkpoint=str(ckpt))
    model = build(cfg, seed=1)
    assert_zero_offsets(model, 5)
    # the rest came from the checkpoint
    torch.testing.assert_close(model.roi_head.bbox_head.conv_cls.weight,
                               plain.roi_head.bbox_head.conv_cls.weight)


@pytest.mark.parametrize('agnostic, groups', [(False, 4), (True, 1)])
def test_offset_channels(agnostic, groups):
    model = build(deform_cfg(class_agnostic_offsets=agnostic))
    head = model.roi_head.bbox_head
    # k = 3, 3 classes + background
    assert head.conv_cls_offset.out_channels == 2 * 9 * groups
    assert head.conv_reg_offset.out_channels == 2 * 9
    assert head.map_channels == (9 * 4, 9 * 4, 2 * 9 * groups, 18)


def test_untrained_deformable_head_is_the_ps_roi_align_head():
    cfg = deform_cfg()
    deform = build(cfg).eval()
    align_cfg = tiny_model_cfg(k=3, roi_layer='PSRoIAlign')
    align_cfg.roi_head.bbox_roi_extractor.roi_layer.update(
        sampling_ratio=2, aligned=True)
    align = MODELS.build(align_cfg).eval()
    align.load_state_dict(deform.state_dict(), strict=False)
    inputs, samples = make_batch(num_imgs=2)
    with torch.no_grad():
        x = deform.extract_feat(inputs)
        rois = torch.tensor([[0, 10., 12, 60, 70], [1, 30, 5, 90, 50],
                             [0, -5, 40, 40, 100]])
        got = deform.roi_head._bbox_forward(x, rois)
        want = align.roi_head._bbox_forward(x, rois)
    torch.testing.assert_close(got['cls_score'], want['cls_score'])
    torch.testing.assert_close(got['bbox_pred'], want['bbox_pred'])


def test_deformable_rfcn_trains_its_offsets():
    cfg = deform_cfg(True, True)
    # OHEM keeping every RoI, so that positives (box loss) are among them
    cfg.train_cfg.rcnn.sampler.num = 10**6
    model = build(cfg).train()
    inputs, samples = make_batch(num_imgs=2)
    losses = model.loss(inputs, copy.deepcopy(samples))
    total = sum(
        sum(v) if isinstance(v, list) else v for k, v in losses.items()
        if 'loss' in k)
    total.backward()
    for conv in offset_layers(model):
        assert conv.weight.grad is not None
        assert conv.weight.grad.abs().sum() > 0, conv
    with torch.no_grad():
        model.eval()
        out = model.predict(inputs, copy.deepcopy(samples))
    assert len(out) == 2
