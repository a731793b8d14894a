"""The fixed-shape training losses against mmdet's own assigner, sampler,
targets and losses (the oracle), and the claim that they never read a value
back to the host."""
import copy

import pytest
import torch
from helpers.fast_training import (OHEM_ALL, OHEM_NMS, RANDOM_ROIS, batch,
                                   build, scalar)

from rfcn_mm.utils import OpCensus


@pytest.mark.parametrize('sampler,class_agnostic', [(None, True),
                                                    (OHEM_ALL, False),
                                                    (OHEM_NMS, True),
                                                    (RANDOM_ROIS, True),
                                                    (RANDOM_ROIS, False)])
def test_losses_and_gradients_match_mmdet(sampler, class_agnostic):
    model = build(sampler, class_agnostic)
    inputs, samples = batch()
    ref = model.loss(inputs, copy.deepcopy(samples))
    sum(scalar(v) for k, v in ref.items() if 'loss' in k).backward()
    ref_grads = {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }
    model.zero_grad()
    model.train_cfg['fixed_shape'] = True
    ours = model.loss(inputs, copy.deepcopy(samples))
    assert set(ours) == set(ref)
    for k in ref:
        torch.testing.assert_close(
            scalar(ours[k]), scalar(ref[k]), rtol=1e-5, atol=1e-6, msg=k)
    sum(scalar(v) for k, v in ours.items() if 'loss' in k).backward()
    grads = {
        n: p.grad
        for n, p in model.named_parameters() if p.grad is not None
    }
    assert set(grads) == set(ref_grads)
    for n, grad in grads.items():
        torch.testing.assert_close(
            grad, ref_grads[n], rtol=1e-4, atol=1e-7, msg=n)
    assert scalar(ref['loss_rpn_bbox']) > 0 and ref['loss_bbox'] > 0


@pytest.mark.parametrize('sampler', [None, OHEM_NMS, RANDOM_ROIS])
def test_fixed_shape_loss_never_syncs(sampler):
    model = build(sampler, fixed_shape=True)
    inputs, samples = batch()
    args = model.loss_inputs(inputs, samples)
    model.fixed_shape_loss(*args)  # anchors cached, as after one step
    with OpCensus() as rec:
        losses = model.fixed_shape_loss(*args)
        sum(scalar(v) for k, v in losses.items() if 'loss' in k).backward()
    assert rec.host_syncs == []
    # the recorder does see mmdet's path synchronise
    with OpCensus() as rec:
        model.train_cfg['fixed_shape'] = False
        model.loss(inputs, copy.deepcopy(samples))
    assert len(rec.host_syncs) > 10


@pytest.mark.cuda
@pytest.mark.parametrize('sampler', [None, RANDOM_ROIS])
def test_cuda_matches_cpu(sampler):
    model = build(sampler, fixed_shape=True)
    inputs, samples = batch()
    args = model.loss_inputs(inputs, samples)
    ref = model.fixed_shape_loss(*args)
    model.cuda()
    ours = model.fixed_shape_loss(*[a.cuda() for a in args])
    for k in ref:
        torch.testing.assert_close(
            scalar(ours[k]).cpu(), scalar(ref[k]), rtol=1e-4, atol=1e-5, msg=k)


def test_bfloat16_autocast():
    """Under AMP the RPN losses stay mmdet's; the RoI losses differ a little
    because mmdet decodes proposals from bfloat16 scores (many ties) while
    the fixed-shape path decodes them in float32."""
    model = build()
    inputs, samples = batch()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ref = model.loss(inputs, copy.deepcopy(samples))
        model.train_cfg['fixed_shape'] = True
        ours = model.loss(inputs, copy.deepcopy(samples))
    for k in ('loss_rpn_cls', 'loss_rpn_bbox'):
        torch.testing.assert_close(scalar(ours[k]), scalar(ref[k]))
    torch.testing.assert_close(
        ours['loss_cls'], ref['loss_cls'], rtol=0.02, atol=0)
    sum(scalar(v) for k, v in ours.items() if 'loss' in k).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
