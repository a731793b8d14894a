"""sample_slots against mmdet's RandomSampler (the oracle)."""
from unittest import mock

import pytest
import torch
from helpers.fast_training import RANDOM_ROIS, batch, build
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import RandomSampler
from mmengine.structures import InstanceData

from rfcn_mm.fast.fixed_shape.assignment import max_iou_assign
from rfcn_mm.fast.fixed_shape.box_coding import pairwise_iou
from rfcn_mm.fast.fixed_shape.sampling import sample_slots


def keyed_choice(keys):
    """RandomSampler.random_choice that takes the gallery's smallest keys."""

    def choice(self, gallery, num):
        return gallery[keys[gallery].argsort()[:num]]

    return choice


@pytest.mark.parametrize('num,pos_fraction,neg_pos_ub', [(16, 0.25, -1),
                                                         (16, 0.5, 3),
                                                         (64, 0.5, -1),
                                                         (200, 0.5, -1)])
def test_random_sample_matches_random_sampler(num, pos_fraction, neg_pos_ub):
    sampler = RandomSampler(
        num, pos_fraction, neg_pos_ub=neg_pos_ub, add_gt_as_proposals=False)
    g = torch.Generator().manual_seed(2)
    n, m = 3, 120
    gt_inds = torch.randint(-1, 4, (n, m), generator=g)
    gt_inds[1] = torch.randint(-1, 1, (m, ), generator=g)  # no positives
    gt_inds[2, :100] = 1  # more positives than the quota
    keys = torch.rand(n, m, generator=g)
    pos, neg = sample_slots(sampler, gt_inds, keys)
    for i in range(n):
        result = AssignResult(4, gt_inds[i], torch.zeros(m),
                              torch.zeros(m, dtype=torch.long))
        with mock.patch.object(RandomSampler, 'random_choice',
                               keyed_choice(keys[i])):
            ref = sampler.sample(
                result, InstanceData(priors=torch.zeros(m, 4)),
                InstanceData(
                    bboxes=torch.zeros(4, 4),
                    labels=torch.zeros(4, dtype=torch.long)))
        assert torch.equal(pos[i].nonzero()[:, 0], ref.pos_inds)
        assert torch.equal(neg[i].nonzero()[:, 0], ref.neg_inds)


def test_random_samples_have_mmdets_sizes():
    """With the configs' real sample sizes: at most num * pos_fraction
    positives, num in all when there are enough candidates."""
    model = build(
        RANDOM_ROIS | dict(num=32, pos_fraction=0.25), fixed_shape=True)
    model.train_cfg.rpn.sampler.num = 256
    model.rpn_head.sampler.num = 256
    inputs, samples = batch()
    args = model.loss_inputs(inputs, samples)
    x = model.extract_feat(inputs)
    cls = model.rpn_head(x)[0][0]
    priors, _ = model._rpn_anchor_grid(cls)
    gt_boxes, gt_valid = args[2], args[4]
    valid = torch.ones(3, priors.size(0), dtype=torch.bool)
    gt_inds = max_iou_assign(
        model.rpn_head.assigner,
        pairwise_iou(gt_boxes, priors[None].expand(3, -1, -1)), gt_valid,
        valid)
    pos, neg = sample_slots(model.rpn_head.sampler, gt_inds)
    assert (pos.sum(1) <= 128).all() and (pos.sum(1) > 0)[:2].all()
    assert ((pos | neg).sum(1) == 256).all()
    assert not (pos & neg).any()
    # different draws differ
    pos2, neg2 = sample_slots(model.rpn_head.sampler, gt_inds)
    assert not torch.equal(neg, neg2)
