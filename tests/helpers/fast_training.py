"""Builders and steps shared by the tests of the fast layer's training:
a tiny FastRFCN that takes every anchor sample, batches, optimizers."""
import copy

import torch
from helpers.tiny_rfcn import make_batch, tiny_model_cfg
from mmdet.registry import MODELS

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


def build(sampler=None, class_agnostic=True, fixed_shape=False):
    cfg = tiny_model_cfg(
        sampler=sampler, class_agnostic=class_agnostic, detector='FastRFCN')
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


def data_batch(inputs, samples):
    """What a dataloader gives train_step: uint8 images and samples."""
    return dict(
        inputs=[img.to(torch.uint8) for img in inputs],
        data_samples=copy.deepcopy(samples))


def sgd(model, amp=False):
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if amp:
        return AmpOptimWrapper(optimizer=opt, dtype=torch.bfloat16)
    return OptimWrapper(opt)


def run_steps(model, steps, device='cpu', amp=False):
    model.to(device)
    wrapper = sgd(model, amp)
    inputs, samples = batch()
    logs = [
        model.train_step(data_batch(inputs, samples), wrapper)
        for _ in range(steps)
    ]
    return logs, {n: p.detach().cpu() for n, p in model.named_parameters()}


def random_boxes(g, n, size=100.):
    xy = torch.rand(n, 2, generator=g) * size
    return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * size / 2],
                     1)
