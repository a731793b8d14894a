"""The fixed-shape training losses against mmdet's own assigner, sampler,
targets and losses (the oracle), and the claim that they never read a value
back to the host."""
import copy
from unittest import mock

import pytest
import torch
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmdet.models.task_modules.samplers import RandomSampler
from mmdet.registry import MODELS
from mmengine.structures import InstanceData
from tiny_rfcn import make_batch, tiny_model_cfg
from torch.utils._python_dispatch import TorchDispatchMode

from rfcn_mm.models.utils.fixed_shape_train import (max_iou_assign,
                                                    pack_ground_truth,
                                                    random_sample)

# every sample taken: the mmdet path and the fixed-shape path then see the
# same samples without sharing a random stream
ALL = 10**6
OHEM_NMS = dict(type='RFCNOHEMSampler', num=32, nms_thr=0.7)
OHEM_ALL = dict(type='RFCNOHEMSampler', num=ALL)  # positives kept too
RANDOM_ROIS = dict(
    type='RandomSampler',
    num=ALL,
    pos_fraction=0.5,
    neg_pos_ub=-1,
    add_gt_as_proposals=True)


def random_boxes(g, n, size=100.):
    xy = torch.rand(n, 2, generator=g) * size
    return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * size / 2],
                     1)


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
    from mmdet.structures.bbox import bbox_overlaps
    ours = max_iou_assign(assigner, bbox_overlaps(gts, priors), gt_valid,
                          prior_valid)
    for i, k in enumerate(num_gts):
        keep = prior_valid[i]
        ref = assigner.assign(
            InstanceData(priors=priors[i][keep]),
            InstanceData(bboxes=gts[i, :k], labels=labels[i, :k]))
        assert torch.equal(ours[i][keep], ref.gt_inds)
        assert (ours[i][~keep] == -1).all()
    assert (ours > 0).any() and (ours == 0).any()


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
    pos, neg = random_sample(sampler, gt_inds, keys)
    for i in range(n):
        from mmdet.models.task_modules.assigners import AssignResult
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


def build(sampler=None, class_agnostic=True, fixed_shape=False):
    cfg = tiny_model_cfg(sampler=sampler, class_agnostic=class_agnostic)
    cfg.train_cfg.rpn.sampler.num = ALL
    cfg.train_cfg.fixed_shape = fixed_shape
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def batch(num_gts=(3, 1, 0)):
    inputs, samples = make_batch(num_imgs=len(num_gts), num_gts=max(num_gts))
    for s, k in zip(samples, num_gts):
        s.gt_instances = s.gt_instances[:k]
    return inputs, samples


def scalar(v):
    return v[0] if isinstance(v, list) else v


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
    from mmdet.structures.bbox import bbox_overlaps
    gt_boxes, gt_valid = args[2], args[4]
    valid = torch.ones(3, priors.size(0), dtype=torch.bool)
    gt_inds = max_iou_assign(
        model.rpn_head.assigner,
        bbox_overlaps(gt_boxes, priors[None].expand(3, -1, -1)), gt_valid,
        valid)
    pos, neg = random_sample(model.rpn_head.sampler, gt_inds)
    assert (pos.sum(1) <= 128).all() and (pos.sum(1) > 0)[:2].all()
    assert ((pos | neg).sum(1) == 256).all()
    assert not (pos & neg).any()
    # different draws differ
    pos2, neg2 = random_sample(model.rpn_head.sampler, gt_inds)
    assert not torch.equal(neg, neg2)


SYNCING = ('nonzero', '_local_scalar_dense', 'unique', 'masked_select',
           'is_nonzero', 'item')


class SyncRecorder(TorchDispatchMode):
    """Records every op that would make a CUDA device wait for the host."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if any(s in name
               for s in SYNCING) or (name.startswith('aten.index.') and any(
                   isinstance(i, torch.Tensor) and i.dtype == torch.bool
                   for i in (args[1] if len(args) > 1 else []) or [])):
            self.found.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('sampler', [None, OHEM_NMS, RANDOM_ROIS])
def test_fixed_shape_loss_never_syncs(sampler):
    model = build(sampler, fixed_shape=True)
    inputs, samples = batch()
    args = model.loss_inputs(inputs, samples)
    model.fixed_shape_loss(*args)  # anchors cached, as after one step
    with SyncRecorder() as rec:
        losses = model.fixed_shape_loss(*args)
        sum(scalar(v) for k, v in losses.items() if 'loss' in k).backward()
    assert rec.found == []
    # the recorder does see mmdet's path synchronise
    with SyncRecorder() as rec:
        model.train_cfg['fixed_shape'] = False
        model.loss(inputs, copy.deepcopy(samples))
    assert len(rec.found) > 10


def test_ground_truth_slots():
    inputs, samples = batch((3, 0, 9))
    boxes, labels, valid = pack_ground_truth(samples, 'cpu')
    assert boxes.shape == (3, 16, 4) and valid.sum(1).tolist() == [3, 0, 9]
    assert torch.equal(boxes[2, :9], samples[2].gt_instances.bboxes)
    assert torch.equal(labels[0, :3], samples[0].gt_instances.labels)


def test_unsupported_training_is_named():
    cfg = tiny_model_cfg()
    cfg.train_cfg.fixed_shape = True
    cfg.train_cfg.rpn.assigner.ignore_iof_thr = 0.5
    cfg.roi_head.bbox_head.loss_bbox = dict(type='GIoULoss')
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    msg = str(err.value)
    assert 'train_cfg.rpn.assigner: ignore_iof_thr' in msg
    assert 'roi_head.bbox_head.loss_bbox must be SmoothL1Loss' in msg


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
