"""max_iou_assign against mmdet's MaxIoUAssigner (the oracle)."""
import pytest
import torch
from helpers.fast_training import random_boxes
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmengine.structures import InstanceData

from rfcn_mm.fast.fixed_shape.assignment import max_iou_assign
from rfcn_mm.fast.fixed_shape.box_coding import pairwise_iou


@pytest.mark.parametrize('kwargs', [
    dict(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3),
    dict(
        pos_iou_thr=0.5,
        neg_iou_thr=0.5,
        min_pos_iou=0.5,
        match_low_quality=False),
    dict(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.5), min_pos_iou=0.2),
    dict(
        pos_iou_thr=0.6,
        neg_iou_thr=0.4,
        min_pos_iou=0.1,
        gt_max_assign_all=False),
])
def test_assign_matches_max_iou_assigner(kwargs):
    assigner = MaxIoUAssigner(**kwargs)
    g = torch.Generator().manual_seed(1)
    n, num_gts, m = 4, [3, 0, 5, 2], 60
    gts = torch.zeros(n, 6, 4)
    gt_valid = torch.zeros(n, 6, dtype=torch.bool)
    labels = torch.zeros(n, 6, dtype=torch.long)
    for i, k in enumerate(num_gts):
        gts[i, :k] = random_boxes(g, k)
        gt_valid[i, :k] = True
    # two identical ground-truth boxes: the later one must win the priors
    # both claim, as in mmdet's loop
    gts[2, 1] = gts[2, 0]
    priors = random_boxes(g, n * m).view(n, m, 4)
    priors[:, 1] = priors[:, 0]  # tied priors: all of them are matched
    prior_valid = torch.rand(n, m, generator=g) > 0.2
    ours = max_iou_assign(assigner, pairwise_iou(gts, priors), gt_valid,
                          prior_valid)
    for i, k in enumerate(num_gts):
        keep = prior_valid[i]
        ref = assigner.assign(
            InstanceData(priors=priors[i][keep]),
            InstanceData(bboxes=gts[i, :k], labels=labels[i, :k]))
        assert torch.equal(ours[i][keep], ref.gt_inds)
        assert (ours[i][~keep] == -1).all()
    assert (ours > 0).any() and (ours == 0).any()
