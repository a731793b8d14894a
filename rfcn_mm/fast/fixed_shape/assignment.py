"""``MaxIoUAssigner`` for a batch in slots."""
import torch
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from torch import Tensor


def max_iou_assign(assigner: MaxIoUAssigner, overlaps: Tensor,
                   gt_valid: Tensor, prior_valid: Tensor) -> Tensor:
    """``MaxIoUAssigner.assign_wrt_overlaps`` for a batch in slots.

    Args:
        assigner (MaxIoUAssigner): Its thresholds are used.
        overlaps (Tensor): (N, G, M) IoU of ground-truth and prior slots.
        gt_valid (Tensor): (N, G) validity of the ground-truth slots.
        prior_valid (Tensor): (N, M) priors taking part (mmdet assigns the
            others nothing: RPN anchors outside the image, empty slots).

    Returns:
        Tensor: (N, M) int64 assigned ground truth, 1-based: 0 negative, -1
        ignored (and every invalid prior).
    """
    n, g, m = overlaps.shape
    ov = overlaps.masked_fill(~(gt_valid[:, :, None] & prior_valid[:, None]),
                              -1.)
    max_ov, argmax_ov = ov.max(dim=1)
    inds = torch.full((n, m), -1, dtype=torch.long, device=ov.device)
    neg_thr = assigner.neg_iou_thr
    if isinstance(neg_thr, tuple):
        neg = (max_ov >= neg_thr[0]) & (max_ov < neg_thr[1])
    else:
        neg = (max_ov >= 0) & (max_ov < neg_thr)
    inds = inds.masked_fill(neg, 0)
    inds = torch.where(max_ov >= assigner.pos_iou_thr, argmax_ov + 1, inds)
    if assigner.match_low_quality:
        # mmdet loops over the ground truth in order, so the last one that
        # claims a prior wins
        gt_max, gt_argmax = ov.max(dim=2)
        ok = (gt_max >= assigner.min_pos_iou) & gt_valid
        if assigner.gt_max_assign_all:
            hit = ov == gt_max[..., None]
        else:
            hit = torch.zeros_like(
                ov, dtype=torch.bool).scatter_(2, gt_argmax[..., None], True)
        hit = hit & ok[..., None]
        gt_id = torch.arange(1, g + 1, device=ov.device).view(1, g, 1)
        last = (hit * gt_id).amax(dim=1)
        inds = torch.where(last > 0, last, inds)
    # an image without ground truth: every prior negative
    inds = torch.where(
        gt_valid.any(1, keepdim=True), inds, torch.zeros_like(inds))
    return inds.masked_fill(~prior_valid, -1)
