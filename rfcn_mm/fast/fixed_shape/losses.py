"""R-FCN's training losses with shapes fixed by the input shape.

mmdet computes the RPN and RoI targets image by image with boolean masks,
``nonzero``, ``unique`` and Python-side counts: about 25 host
synchronisations per training step, each of which drains the GPU queue
while the CPU catches up. This package computes the same targets and
losses for the whole batch at once with padded tensors: ground truth in
``G`` slots per image, every anchor, ``G + P`` RoI slots per image (ground
truth then proposals, as mmdet's samplers add them), and boolean masks for
what is valid, sampled or kept. Nothing reads a value back to the host.

Each step follows mmdet 3.3's code (``MaxIoUAssigner.assign_wrt_overlaps``,
``RandomSampler``, ``AnchorHead._get_targets_single`` and
``loss_by_feat``, ``BBoxHead.get_targets`` and ``loss``); OHEM is
:meth:`RFCNOHEMSampler.select_slots` itself. Given the same random subsets
the losses are mmdet's (tests/test_fast/test_fixed_shape/).
"""
from typing import Optional

import torch
from mmdet.models.losses import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from torch import Tensor

from rfcn_mm.models import RFCNOHEMSampler
from .assignment import max_iou_assign
from .box_coding import pairwise_iou
from .loss_targets import slot_targets
from .sampling import sample_slots
from .slots import inside_image

REG_LOSSES = {SmoothL1Loss: smooth_l1_loss, L1Loss: l1_loss}


def reg_loss(module,
             pred: Tensor,
             target: Tensor,
             weight: Tensor,
             reduction: str = 'mean',
             avg_factor: Optional[Tensor] = None) -> Tensor:
    """``module(pred, target, weight, avg_factor=...)`` for a SmoothL1Loss or
    L1Loss module without its all-weights-zero branch, which reads a value
    back to the host (with zero weights both give 0)."""
    kwargs = dict(beta=module.beta) if isinstance(module, SmoothL1Loss) \
        else {}
    return module.loss_weight * REG_LOSSES[type(module)](
        pred,
        target,
        weight,
        reduction=reduction,
        avg_factor=avg_factor,
        **kwargs)


def rpn_loss(rpn_head,
             cls_score: Tensor,
             bbox_pred: Tensor,
             priors: Tensor,
             anchor_yx: Tensor,
             img_info: Tensor,
             gt_boxes: Tensor,
             gt_valid: Tensor,
             train_cfg,
             keys: Optional[Tensor] = None) -> dict:
    """``RPNHead.loss_by_feat`` for a batch in slots.

    Args:
        rpn_head (RPNHead): The detector's RPN head.
        cls_score (Tensor): (N, A * C, H, W) class scores.
        bbox_pred (Tensor): (N, A * 4, H, W) box deltas.
        priors (Tensor): (H * W * A, 4) anchors.
        anchor_yx (Tensor): (H * W * A, 2) grid row and column of each
            anchor.
        img_info (Tensor): (N, 4): image height and width, and the number
            of grid rows and columns that the image's padded shape covers
            (``AnchorGenerator.valid_flags``).
        gt_boxes (Tensor): (N, G, 4) ground-truth slots.
        gt_valid (Tensor): (N, G) their validity.
        train_cfg (ConfigDict): ``train_cfg.rpn``.
        keys (Tensor, optional): (N, H * W * A) sampling keys.

    Returns:
        dict: ``loss_rpn_cls`` and ``loss_rpn_bbox``, lists of one level,
        as mmdet's.
    """
    n = cls_score.size(0)
    valid = (anchor_yx[None, :, 0] < img_info[:, 2:3]) & \
        (anchor_yx[None, :, 1] < img_info[:, 3:4])
    border = train_cfg.get('allowed_border', -1)
    if border >= 0:
        valid = valid & inside_image(priors[None], img_info[:, 0:1],
                                     img_info[:, 1:2], border)
    all_priors = priors[None].expand(n, -1, -1)
    gt_inds = max_iou_assign(rpn_head.assigner,
                             pairwise_iou(gt_boxes, all_priors), gt_valid,
                             valid)
    pos, neg = sample_slots(rpn_head.sampler, gt_inds, keys)
    # the RPN's ground truth has label 0
    labels, label_weights, bbox_targets, bbox_weights = slot_targets(
        all_priors, gt_boxes, torch.zeros_like(gt_inds), gt_inds, pos, neg,
        rpn_head.num_classes, rpn_head.bbox_coder,
        train_cfg.get('pos_weight', -1))
    # SamplingResult counts at least one positive and one negative per image
    avg_factor = (pos.sum(1).clamp(min=1) + neg.sum(1).clamp(min=1)).sum()
    c = rpn_head.cls_out_channels
    scores = cls_score.permute(0, 2, 3, 1).reshape(-1, c)
    labels, label_weights = labels.reshape(-1), label_weights.reshape(-1)
    if rpn_head.use_sigmoid_cls:
        # mmdet's _expand_onehot_labels, without its nonzero
        classes = torch.arange(c, device=labels.device)
        labels = (labels[:, None] == classes).float()
        label_weights = label_weights[:, None].expand(-1, c)
    loss_cls = rpn_head.loss_cls(
        scores, labels, label_weights, avg_factor=avg_factor)
    loss_bbox = reg_loss(
        rpn_head.loss_bbox,
        bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4),
        bbox_targets.reshape(-1, 4),
        bbox_weights.reshape(-1, 4),
        avg_factor=avg_factor)
    return dict(loss_rpn_cls=[loss_cls], loss_rpn_bbox=[loss_bbox])


def slot_accuracy(cls_score: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """mmdet's top-1 ``accuracy`` over the RoIs in ``mask``, in percent,
    shaped (1, ) as mmdet's."""
    correct = (cls_score.argmax(1) == labels) & mask
    return (correct.sum().float() * 100. / mask.sum().clamp(min=1)).view(1)


def rcnn_loss(bbox_head, sampler, cls_score: Tensor, bbox_pred: Tensor,
              rois: Tensor, labels: Tensor, label_weights: Tensor,
              bbox_targets: Tensor, bbox_weights: Tensor,
              sampled: Tensor) -> dict:
    """The box head's losses over the sampled slots: mmdet's
    ``BBoxHead.loss``, or with an R-FCN OHEM sampler the project's mining
    (the ``num`` highest-loss RoIs of each image, optionally after NMS over
    the losses).

    Args:
        bbox_head (PSBBoxHead): The head.
        sampler: ``roi_head.bbox_sampler``.
        cls_score (Tensor): (N * M, C + 1) logits.
        bbox_pred (Tensor): (N * M, 4) or (N * M, 4 * C) deltas.
        rois (Tensor): (N * M, 5) from :func:`proposals_to_rois` of the
            slots and the sampled mask (unsampled slots: batch index -1).
        labels, label_weights, bbox_targets, bbox_weights (Tensor): From
            :func:`targets`, (N, M) and (N, M, 4).
        sampled (Tensor): (N, M) sampled slots.

    Returns:
        dict: ``loss_cls``, ``loss_bbox`` and ``acc``.
    """
    n, m = sampled.shape
    labels, label_weights = labels.view(-1), label_weights.view(-1)
    bbox_targets = bbox_targets.view(-1, 4)
    bbox_weights = bbox_weights.view(-1, 4)
    if not bbox_head.reg_class_agnostic:
        cls = labels.clamp(max=bbox_head.num_classes - 1)
        rows = torch.arange(n * m, device=cls.device)
        bbox_pred = bbox_pred.view(n * m, -1, 4)[rows, cls]
    if not isinstance(sampler, RFCNOHEMSampler):
        avg_cls = (label_weights > 0).sum().float().clamp(min=1.)
        loss_cls = bbox_head.loss_cls(
            cls_score, labels, label_weights, avg_factor=avg_cls)
        loss_bbox = reg_loss(
            bbox_head.loss_bbox,
            bbox_pred,
            bbox_targets,
            bbox_weights,
            avg_factor=sampled.sum())
        return dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            acc=slot_accuracy(cls_score, labels, sampled.view(-1)))
    loss_cls = bbox_head.loss_cls(
        cls_score, labels, label_weights, reduction_override='none')
    loss_bbox = reg_loss(
        bbox_head.loss_bbox,
        bbox_pred,
        bbox_targets,
        bbox_weights,
        reduction='none').sum(1)
    kept = sampler.select_slots((loss_cls + loss_bbox).view(n, m), sampled,
                                rois.view(n, m, 5)[..., 1:]).view(-1)
    return dict(
        loss_cls=sampler.mean_over_kept(loss_cls, kept),
        loss_bbox=sampler.mean_over_kept(loss_bbox, kept),
        acc=slot_accuracy(cls_score, labels, kept))
