"""RFCNOHEMSampler."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from rfcn_mm.models import RFCNOHEMSampler


def test_select_keeps_exactly_the_top_losses_per_image():
    losses = torch.tensor([5., 1., 9., 3., 7., 2., 8., 0.5, 4., 6.])
    rois = torch.zeros(10, 5)
    rois[5:, 0] = 1  # images 0 and 1, five RoIs each
    keep = RFCNOHEMSampler(num=2).select(losses, rois)
    # image 0: 9 and 7 (indices 2, 4); image 1: 8 and 6 (indices 6, 9)
    assert keep.nonzero()[:, 0].tolist() == [2, 4, 6, 9]
    # fewer RoIs than num: all kept
    assert RFCNOHEMSampler(num=8).select(losses, rois).all()


def test_select_with_nms_drops_near_duplicates():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 11.],
                          [20., 20., 30., 30.]])
    rois = torch.cat([torch.zeros(3, 1), boxes], 1)
    losses = torch.tensor([3., 2., 1.])
    keep = RFCNOHEMSampler(num=2, nms_thr=0.7).select(losses, rois)
    assert keep.tolist() == [True, False, True]
    keep = RFCNOHEMSampler(num=2).select(losses, rois)
    assert keep.tolist() == [True, True, False]


def test_sample_keeps_every_proposal_and_the_ground_truth():
    sampler = RFCNOHEMSampler(num=4)
    assigner = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5)
    priors = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                           [30., 30., 40., 40.], [50., 50., 60., 60.],
                           [0., 30., 10., 40.], [5., 5., 15., 15.]])
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([1]))
    pred = InstanceData(priors=priors)
    res = sampler.sample(assigner.assign(pred, gt), pred, gt)
    # all 6 proposals + 1 gt, despite num=4
    assert len(res.pos_inds) + len(res.neg_inds) == 7


def _head_and_targets(num_kept):
    head = MODELS.build(
        dict(
            type='PSBBoxHead',
            roi_feat_size=3,
            in_channels=8,
            mid_channels=8,
            num_classes=3,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2])))
    sampler = TASK_UTILS.build(dict(type='RFCNOHEMSampler', num=num_kept))
    assigner = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5)
    g = torch.Generator().manual_seed(0)
    results = []
    for _ in range(2):
        xy = torch.rand(12, 2, generator=g) * 50
        priors = torch.cat([xy, xy + 10 + torch.rand(12, 2, generator=g) * 20],
                           1)
        gt = InstanceData(
            bboxes=priors[:3] + torch.rand(3, 4, generator=g) * 4,
            labels=torch.tensor([0, 1, 2]))
        pred = InstanceData(priors=priors)
        results.append(sampler.sample(assigner.assign(pred, gt), pred, gt))
    return head, sampler, results


def test_ohem_loss_keeps_top_b_and_gives_no_gradient_to_the_rest():
    from mmdet.structures.bbox import bbox2roi
    num_kept = 5
    head, sampler, results = _head_and_targets(num_kept)
    rois = bbox2roi([r.priors for r in results])
    n = rois.size(0)
    g = torch.Generator().manual_seed(1)
    cls_score = torch.randn(n, 4, generator=g, requires_grad=True)
    bbox_pred = torch.randn(n, 4, generator=g, requires_grad=True)
    out = head.loss_and_target(
        cls_score,
        bbox_pred,
        rois,
        results,
        ConfigDict(pos_weight=-1),
        hard_example_miner=sampler)
    labels, _, targets, _ = out['bbox_targets']
    # independent oracle: plain cross-entropy + smooth L1 of each RoI
    ce = F.cross_entropy(cls_score, labels, reduction='none')
    pos = labels < 3
    sl1 = torch.zeros(n)
    sl1[pos] = F.smooth_l1_loss(
        bbox_pred[pos], targets[pos], beta=1.0, reduction='none').sum(1)
    total = (ce + sl1).detach()
    expected = torch.zeros(n, dtype=torch.bool)
    for img in (0, 1):
        idx = (rois[:, 0] == img).nonzero()[:, 0]
        expected[idx[total[idx].topk(num_kept).indices]] = True
    losses = out['loss_bbox']
    torch.testing.assert_close(losses['loss_cls'],
                               ce[expected].sum() / expected.sum())
    torch.testing.assert_close(losses['loss_bbox'],
                               sl1[expected].sum() / expected.sum())
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    grad_rows = (cls_score.grad.abs().sum(1) > 0) | (
        bbox_pred.grad.abs().sum(1) > 0)
    assert torch.equal(grad_rows, expected)


def test_invalid_num():
    with pytest.raises(ValueError, match='num must be positive'):
        RFCNOHEMSampler(num=0)
