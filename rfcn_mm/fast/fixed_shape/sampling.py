"""mmdet's ``RandomSampler`` (and the R-FCN OHEM sampler's
keep-everything) for a batch in slots: random subsets are the slots with
the smallest uniform random keys, the same distribution as mmdet's
``randperm``."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from rfcn_mm.models import RFCNOHEMSampler
from .assignment import max_iou_assign
from .box_coding import pairwise_iou


def _rank(keys: Tensor, mask: Tensor) -> Tensor:
    """Rank (0 = smallest key) of each slot among the slots in ``mask`` of
    its row; slots outside the mask rank after them."""
    order = keys.masked_fill(~mask, 2.).argsort(dim=1)
    pos = torch.arange(
        keys.size(1), device=keys.device).expand_as(order).contiguous()
    return torch.empty_like(order).scatter_(1, order, pos)


def sample_slots(sampler,
                 gt_inds: Tensor,
                 keys: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``RandomSampler.sample`` (or, for :class:`RFCNOHEMSampler`, its
    keep-everything) for a batch in slots.

    Args:
        sampler: The sampler whose ``num``, ``pos_fraction`` and
            ``neg_pos_ub`` are used.
        gt_inds (Tensor): (N, M) assignment from :func:`max_iou_assign`.
        keys (Tensor, optional): (N, M) uniform random keys in [0, 1); each
            random subset is made of the slots with the smallest keys.
            Drawn when not given.

    Returns:
        tuple[Tensor, Tensor]: (N, M) masks of the sampled positives and
        negatives.
    """
    pos_c, neg_c = gt_inds > 0, gt_inds == 0
    if isinstance(sampler, RFCNOHEMSampler):
        return pos_c, neg_c
    if keys is None:
        keys = torch.rand(gt_inds.shape, device=gt_inds.device)
    pos = pos_c & (
        _rank(keys, pos_c) < int(sampler.num * sampler.pos_fraction))
    num_pos = pos.sum(1, keepdim=True)
    num_neg = sampler.num - num_pos
    if sampler.neg_pos_ub >= 0:
        bound = (sampler.neg_pos_ub * num_pos.clamp(min=1)).floor().long()
        num_neg = torch.minimum(num_neg, bound)
    return pos, neg_c & (_rank(keys, neg_c) < num_neg)


def rcnn_slots(sampler,
               gt_boxes: Tensor,
               gt_valid: Tensor,
               proposals: Tensor,
               proposal_valid: Tensor,
               assigner,
               keys: Optional[Tensor] = None):
    """RoI slots of a batch, assigned and sampled as ``StandardRoIHead.loss``
    does: ground truth first (when the sampler adds it), then proposals.

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]: priors (N, M, 4), gt_inds
        (N, M), sampled positives and negatives (N, M).
    """
    gt_inds = max_iou_assign(assigner, pairwise_iou(gt_boxes, proposals),
                             gt_valid, proposal_valid)
    priors = proposals
    if sampler.add_gt_as_proposals:
        g = gt_boxes.size(1)
        own = torch.arange(1, g + 1, device=gt_inds.device).expand_as(gt_valid)
        gt_inds = torch.cat([own.masked_fill(~gt_valid, -1), gt_inds], 1)
        priors = torch.cat([gt_boxes, proposals], 1)
    pos, neg = sample_slots(sampler, gt_inds, keys)
    return priors, gt_inds, pos, neg
