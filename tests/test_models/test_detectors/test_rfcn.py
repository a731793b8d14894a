"""RFCN."""
import copy

import pytest
import torch
from helpers.tiny_rfcn import build_tiny, make_batch

from rfcn_mm.models import PSBBoxHead, PSRoIExtractor, PSRoIHead


def _losses(model, inputs, samples):
    model.train()
    return model.loss(inputs, samples)


def _total(losses):
    # mmdet's RPN losses are lists (one entry per level)
    return sum(
        sum(v) if isinstance(v, list) else v for k, v in losses.items()
        if 'loss' in k)


def test_build_from_config_routes_conv4_and_conv5():
    model = build_tiny()
    assert isinstance(model.roi_head, PSRoIHead)
    assert isinstance(model.roi_head.bbox_head, PSBBoxHead)
    assert isinstance(model.roi_head.bbox_roi_extractor, PSRoIExtractor)
    inputs, _ = make_batch(1)
    feats = model.extract_feat(inputs)
    # conv4 at stride 16 for the RPN; conv5 keeps stride 16 (dilated)
    assert len(feats) == 1 and feats[0].shape[-2:] == (6, 8)
    conv5 = model.roi_head.shared_head(feats[0])
    assert conv5.shape[-2:] == (6, 8) and conv5.shape[1] == 512
    # extractor channels derived from the head: (C + 1) + 4
    assert model.roi_head.bbox_roi_extractor.out_channels == 3 + 1 + 4
    # frozen conv1 + res2 and frozen BN
    assert not any(p.requires_grad for p in model.backbone.layer1.parameters())
    assert not model.backbone.norm1.weight.requires_grad


def test_losses_with_ground_truth():
    model = build_tiny()
    losses = _losses(model, *make_batch())
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
                'acc'):
        assert key in losses
    total = _total(losses)
    assert torch.isfinite(total) and total > 0
    assert losses['loss_cls'] > 0 and losses['loss_bbox'] > 0
    total.backward()
    assert model.roi_head.bbox_head.conv_cls.weight.grad.abs().sum() > 0


def test_losses_without_ground_truth():
    model = build_tiny()
    inputs, samples = make_batch(num_gts=0)
    losses = _losses(model, inputs, samples)
    assert losses['loss_cls'] > 0
    assert losses['loss_bbox'] == 0
    assert sum(losses['loss_rpn_bbox']) == 0


def test_predict_returns_instances_in_original_coordinates():
    model = build_tiny().eval()
    inputs, samples = make_batch(num_imgs=1, scale_factor=(0.5, 0.5))
    with torch.no_grad():
        scaled = model.predict(inputs, copy.deepcopy(samples), True)[0]
        raw = model.predict(inputs, copy.deepcopy(samples), False)[0]
    pred, pred_raw = scaled.pred_instances, raw.pred_instances
    assert {'bboxes', 'scores', 'labels'} <= set(pred.keys())
    assert pred.bboxes.shape[1] == 4 and len(pred) > 0
    assert len(pred) <= 100
    torch.testing.assert_close(pred.bboxes, pred_raw.bboxes / 0.5)
    assert pred.labels.max() < 3 and (pred.scores <= 1).all()
    ori_h, ori_w = samples[0].ori_shape
    assert pred.bboxes[:, 2].max() <= ori_w
    assert pred.bboxes[:, 3].max() <= ori_h


@pytest.mark.parametrize('k', [1, 3, 7])
@pytest.mark.parametrize('roi_layer', ['PSRoIPool', 'PSRoIAlign'])
@pytest.mark.parametrize('class_agnostic', [True, False])
def test_variants_build_and_run(k, roi_layer, class_agnostic):
    model = build_tiny(k=k, roi_layer=roi_layer, class_agnostic=class_agnostic)
    head = model.roi_head.bbox_head
    bins = k * k
    assert head.conv_cls.out_channels == bins * 4
    assert head.conv_reg.out_channels == bins * (4 if class_agnostic else 12)
    inputs, samples = make_batch()
    losses = _losses(model, inputs, samples)
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    model.eval()
    with torch.no_grad():
        out = model.predict(inputs, samples)
    assert len(out) == 2 and out[0].pred_instances.bboxes.shape[1] == 4


@pytest.mark.parametrize('sampler', [
    dict(
        type='RandomSampler',
        num=32,
        pos_fraction=0.25,
        neg_pos_ub=-1,
        add_gt_as_proposals=True),
    dict(
        type='OHEMSampler',
        num=32,
        pos_fraction=0.25,
        neg_pos_ub=-1,
        add_gt_as_proposals=True),
])
def test_mmdet_samplers_work_with_the_head(sampler):
    model = build_tiny(sampler=sampler)
    losses = _losses(model, *make_batch())
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_training_and_inference_on_cpu(dtype):
    model = build_tiny()
    inputs, samples = make_batch()
    torch.manual_seed(0)
    with torch.no_grad():
        ref = _losses(model, inputs, copy.deepcopy(samples))
    torch.manual_seed(0)
    with torch.autocast('cpu', dtype=dtype):
        losses = _losses(model, inputs, copy.deepcopy(samples))
        total = _total(losses)
    assert torch.isfinite(total)
    # the float32 losses are the oracle (same seed, same sampled RoIs)
    for key in ('loss_cls', 'loss_bbox'):
        assert abs(losses[key].item() - ref[key].item()) <= \
            0.05 * ref[key].item() + 1e-3, key
    total.backward()
    model.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=dtype):
        out = model.predict(inputs, samples)
    assert torch.isfinite(out[0].pred_instances.bboxes).all()


@pytest.mark.cuda
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_amp_training_and_inference_on_cuda(dtype):
    model = build_tiny().cuda()
    inputs, samples = make_batch()
    inputs = inputs.cuda()
    samples = [s.to('cuda') for s in samples]
    with torch.autocast('cuda', dtype=dtype):
        losses = _losses(model, inputs, samples)
        total = _total(losses)
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad(), torch.autocast('cuda', dtype=dtype):
        out = model.predict(inputs, samples)
    assert torch.isfinite(out[0].pred_instances.bboxes).all()
