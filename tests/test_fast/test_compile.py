"""torch.compile(fullgraph=True) of the PS RoI head's training step and of
FastRFCN's fixed-shape inference, against eager (the oracle).

The suite compiles with the ``aot_eager`` backend: Dynamo must capture
each function as one graph (the registered ops with their fake kernels and
autograd), and AOTAutograd must trace forward and backward, which is what
``fullgraph`` asks of the ops. Inductor's code generation on top of that
takes about a minute per function on 2 cores;
``tools/analysis_tools/benchmark_detector.py --compile`` times it."""
import pytest
import torch
from helpers.fast_training import OHEM_NMS, RANDOM_ROIS, batch, build
from helpers.tiny_rfcn import build_tiny, make_batch

from rfcn_mm.fast.fixed_shape import (proposals_to_rois, rcnn_loss, rcnn_slots,
                                      slot_targets)


def head_training_step(roi_head):
    """Score maps, PS pooling, voting, sampling and the fixed-shape losses
    (with OHEM when the sampler is R-FCN's) of a batch in slots."""

    def step(feats, proposals, valid, gt_boxes, gt_labels, gt_valid, keys):
        priors, gt_inds, pos, neg = rcnn_slots(roi_head.bbox_sampler,
                                               gt_boxes, gt_valid, proposals,
                                               valid, roi_head.bbox_assigner,
                                               keys)
        sampled = pos | neg
        rois = proposals_to_rois(priors, sampled)
        res = roi_head.pool_and_vote(roi_head.score_maps((feats, )), rois)
        head = roi_head.bbox_head
        targets = slot_targets(priors, gt_boxes, gt_labels, gt_inds, pos, neg,
                               head.num_classes, head.bbox_coder, -1)
        losses = rcnn_loss(head, roi_head.bbox_sampler, res['cls_score'],
                           res['bbox_pred'], rois, *targets, sampled)
        return losses['loss_cls'] + losses['loss_bbox']

    return step


@pytest.mark.parametrize('sampler', [OHEM_NMS, RANDOM_ROIS])
def test_head_training_step_compiles_as_one_graph(sampler):
    model = build(sampler, fixed_shape=True)
    inputs, samples = batch()
    _, _, gt_boxes, gt_labels, gt_valid = model.loss_inputs(inputs, samples)
    with torch.no_grad():
        feats = model.extract_feat(inputs)[0]
    feats.requires_grad_()
    g = torch.Generator().manual_seed(0)
    n, num_gt = gt_boxes.shape[:2]
    near = gt_boxes.repeat(1, 4, 1) + torch.randn(
        n, num_gt * 4, 4, generator=g) * 4
    far = torch.rand(n, 40, 2, generator=g).mul(80).repeat(1, 1, 2) + \
        torch.tensor([0, 0, 20, 20.])
    proposals = torch.cat([near, far], 1)
    valid = torch.rand(proposals.shape[:2], generator=g) > 0.1
    keys = torch.rand(n, num_gt + proposals.size(1), generator=g)
    args = (feats, proposals, valid, gt_boxes, gt_labels, gt_valid, keys)
    params = [feats] + [
        p for p in model.roi_head.parameters() if p.requires_grad
    ]
    step = head_training_step(model.roi_head)
    want = step(*args)
    want_grads = torch.autograd.grad(want, params, allow_unused=True)
    compiled = torch.compile(step, fullgraph=True, backend='aot_eager')
    got = compiled(*args)
    grads = torch.autograd.grad(got, params, allow_unused=True)
    torch.testing.assert_close(got, want)
    for a, b in zip(grads, want_grads):
        if b is not None:
            torch.testing.assert_close(a, b)
    assert grads[0].abs().sum() > 0  # the gradient reaches the features


def test_fixed_shape_inference_compiles_with_the_same_detections():
    model = build_tiny(seed=3, detector='FastRFCN').eval()
    model.optimize_for_inference(channels_last=False)
    inputs, _ = make_batch(num_imgs=2)
    info = torch.tensor([[96., 128., 1., 1.], [80., 112., 1.5, 1.5]])
    compiled = torch.compile(
        model.fixed_shape_forward, fullgraph=True, backend='aot_eager')
    with torch.no_grad():
        want = model.fixed_shape_forward(inputs, info)
        got = compiled(inputs, info)
    assert want[3].sum() > 50
    for a, b in zip(got, want):
        assert torch.equal(a, b)
