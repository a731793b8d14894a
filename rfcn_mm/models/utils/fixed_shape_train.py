"""R-FCN's training losses with shapes fixed by the input shape.

mmdet computes the RPN and RoI targets image by image with boolean masks,
``nonzero``, ``unique`` and Python-side counts: about 25 host
synchronisations per training step, each of which drains the GPU queue
while the CPU catches up. The functions here compute the same targets and
losses for the whole batch at once with padded tensors: ground truth in
``G`` slots per image, every anchor, ``G + P`` RoI slots per image (ground
truth then proposals, as mmdet's samplers add them), and boolean masks for
what is valid, sampled or kept. Nothing reads a value back to the host.

Each step follows mmdet 3.3's code (``MaxIoUAssigner.assign_wrt_overlaps``,
``RandomSampler``, ``AnchorHead._get_targets_single`` and
``loss_by_feat``, ``BBoxHead.get_targets`` and ``loss``) and the project's
OHEM (:class:`RFCNOHEMSampler`, :meth:`PSBBoxHead.loss_and_target`). Random
subsets are drawn as the ``num`` smallest of uniform random keys, which is
the same distribution as mmdet's ``randperm``; given the same subsets the
losses are mmdet's (tests/test_models/test_fixed_shape_train.py).
"""
from typing import Optional, Tuple

import torch
from mmdet.models.losses import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.samplers import RandomSampler
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor

from rfcn_mm.ops import sorted_nms
from .fixed_shape_post import _constant, _take, nms_cfg_problems

_REG_LOSSES = {SmoothL1Loss: smooth_l1_loss, L1Loss: l1_loss}


def check_fixed_shape_train_support(detector) -> None:
    """Raise ValueError naming every part of ``detector`` (an RFCN) whose
    training the fixed-shape losses do not reproduce."""
    rpn, roi_head = detector.rpn_head, detector.roi_head
    head = roi_head.bbox_head
    problems = []
    if len(rpn.prior_generator.strides) != 1:
        problems.append('the RPN must have one level')
    for name, part in (('rpn_head', rpn), ('roi_head.bbox_head', head)):
        if type(part.bbox_coder) is not DeltaXYWHBBoxCoder:
            problems.append(f'{name}.bbox_coder must be DeltaXYWHBBoxCoder')
        if part.reg_decoded_bbox:
            problems.append(f'{name}.reg_decoded_bbox is not supported')
        if type(part.loss_bbox) not in _REG_LOSSES:
            problems.append(f'{name}.loss_bbox must be SmoothL1Loss or '
                            f'L1Loss, got {type(part.loss_bbox).__name__}')
        if type(part.loss_cls).__name__ != 'CrossEntropyLoss' or \
                part.loss_cls.use_mask:
            problems.append(f'{name}.loss_cls must be CrossEntropyLoss')
    if getattr(head.loss_cls, 'use_sigmoid', False):
        problems.append('roi_head.bbox_head.loss_cls must be a softmax '
                        'CrossEntropyLoss')
    if getattr(head, 'custom_cls_channels', False):
        problems.append('bbox_head with custom_cls_channels')
    for name, assigner in (('train_cfg.rpn.assigner', rpn.assigner),
                           ('train_cfg.rcnn.assigner',
                            roi_head.bbox_assigner)):
        if type(assigner) is not MaxIoUAssigner:
            problems.append(f'{name} must be MaxIoUAssigner')
            continue
        if assigner.ignore_iof_thr > 0 or assigner.perm_repeat_gt_cfg:
            problems.append(f'{name}: ignore_iof_thr and perm_repeat_gt_cfg '
                            'are not supported')
        calc = assigner.iou_calculator
        if type(calc).__name__ != 'BboxOverlaps2D' or calc.scale != 1. or \
                calc.dtype is not None:
            problems.append(f'{name}.iou_calculator must be a plain '
                            'BboxOverlaps2D')
    if type(rpn.sampler) is not RandomSampler:
        problems.append('train_cfg.rpn.sampler must be RandomSampler')
    sampler = roi_head.bbox_sampler
    if type(sampler) is not RandomSampler and not hasattr(sampler, 'select'):
        problems.append('train_cfg.rcnn.sampler must be RandomSampler or '
                        'RFCNOHEMSampler')
    if detector.train_cfg.rpn_proposal.get('max_per_img', 0) <= 0:
        problems.append('train_cfg.rpn_proposal.max_per_img must be positive')
    problems += nms_cfg_problems('train_cfg.rpn_proposal.nms',
                                 detector.train_cfg.rpn_proposal.get('nms'))
    if problems:
        raise ValueError('train_cfg.fixed_shape=True cannot reproduce this '
                         'model\'s training: ' + '; '.join(problems) +
                         '. Set train_cfg.fixed_shape=False.')


def pack_ground_truth(batch_data_samples,
                      device,
                      multiple: int = 8) -> Tuple[Tensor, Tensor, Tensor]:
    """Ground truth of a batch in slots.

    Args:
        batch_data_samples (list[DetDataSample]): With ``gt_instances``.
        device: Where the tensors go.
        multiple (int): The slot count G is the largest number of boxes of
            an image rounded up to a multiple of this (at least one slot), so
            that few distinct shapes occur. Defaults to 8.

    Returns:
        tuple[Tensor, Tensor, Tensor]: boxes (N, G, 4) float32, labels
        (N, G) int64 and validity (N, G) of the slots.
    """
    counts = [len(s.gt_instances) for s in batch_data_samples]
    g = -(-max(counts + [1]) // multiple) * multiple
    n = len(batch_data_samples)
    boxes = torch.zeros(n, g, 4, device=device)
    labels = torch.zeros(n, g, dtype=torch.long, device=device)
    for i, (s, k) in enumerate(zip(batch_data_samples, counts)):
        if k:
            boxes[i, :k] = get_box_tensor(s.gt_instances.bboxes).to(boxes)
            labels[i, :k] = s.gt_instances.labels
    valid = torch.arange(
        g, device=device)[None] < torch.tensor(
            counts, device=device)[:, None]
    return boxes, labels, valid


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


def iou(gts: Tensor, priors: Tensor) -> Tensor:
    """(N, G, M) IoU of (N, G, 4) and (N, M, 4) boxes: mmdet's
    ``bbox_overlaps`` (mode ``'iou'``, eps 1e-6), operation for operation,
    without its host-made ``eps`` tensor (a copy from the host cannot be
    captured in a CUDA graph)."""
    area1 = (gts[..., 2] - gts[..., 0]) * (gts[..., 3] - gts[..., 1])
    area2 = (priors[..., 2] - priors[..., 0]) * (
        priors[..., 3] - priors[..., 1])
    lt = torch.max(gts[..., :, None, :2], priors[..., None, :, :2])
    rb = torch.min(gts[..., :, None, 2:], priors[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[..., None] + area2[..., None, :] - overlap
    return overlap / union.clamp(min=1e-6)


def _rank(keys: Tensor, mask: Tensor) -> Tensor:
    """Rank (0 = smallest key) of each slot among the slots in ``mask`` of
    its row; slots outside the mask rank after them."""
    order = keys.masked_fill(~mask, 2.).argsort(dim=1)
    pos = torch.arange(
        keys.size(1), device=keys.device).expand_as(order).contiguous()
    return torch.empty_like(order).scatter_(1, order, pos)


def random_sample(sampler,
                  gt_inds: Tensor,
                  keys: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``RandomSampler.sample`` (or, for a sampler with ``select``, the R-FCN
    OHEM sampler's keep-everything) for a batch in slots.

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
    if hasattr(sampler, 'select'):
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


def encode(coder: DeltaXYWHBBoxCoder, priors: Tensor, gts: Tensor) -> Tensor:
    """``coder.encode`` (mmdet's ``bbox2delta``, operation for operation)
    with the means and stds kept on the device."""
    priors, gts = priors.float(), gts.float()
    px = (priors[..., 0] + priors[..., 2]) * 0.5
    py = (priors[..., 1] + priors[..., 3]) * 0.5
    pw = priors[..., 2] - priors[..., 0]
    ph = priors[..., 3] - priors[..., 1]
    gx = (gts[..., 0] + gts[..., 2]) * 0.5
    gy = (gts[..., 1] + gts[..., 3]) * 0.5
    gw = gts[..., 2] - gts[..., 0]
    gh = gts[..., 3] - gts[..., 1]
    deltas = torch.stack([(gx - px) / pw, (gy - py) / ph,
                          torch.log(gw / pw),
                          torch.log(gh / ph)],
                         dim=-1)
    shape = (1, ) * (deltas.dim() - 1) + (4, )
    return deltas.sub(_constant(coder.means, deltas).view(shape)).div(
        _constant(coder.stds, deltas).view(shape))


def targets(priors: Tensor, gt_boxes: Tensor, gt_labels: Tensor,
            gt_inds: Tensor, pos: Tensor, neg: Tensor, num_classes: int,
            coder: DeltaXYWHBBoxCoder,
            pos_weight: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Labels, label weights, box targets and box weights of every slot
    (``AnchorHead._get_targets_single`` / ``BBoxHead._get_targets_single``):
    background label and zero weights for unsampled slots."""
    idx = (gt_inds - 1).clamp(min=0)
    labels = torch.where(pos, gt_labels.gather(1, idx), num_classes)
    label_weights = pos * (1.0 if pos_weight <= 0 else pos_weight) + \
        neg.float()
    deltas = encode(coder, priors, _take(gt_boxes, idx))
    bbox_targets = torch.where(pos[..., None], deltas, 0.)
    bbox_weights = pos[..., None].expand_as(bbox_targets).float()
    return labels, label_weights, bbox_targets, bbox_weights


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
    return module.loss_weight * _REG_LOSSES[type(module)](
        pred,
        target,
        weight,
        reduction=reduction,
        avg_factor=avg_factor,
        **kwargs)


def inside_image(priors: Tensor, h, w, border) -> Tensor:
    """mmdet's ``anchor_inside_flags``: which (..., 4) priors lie within
    ``border`` pixels of an image of height ``h`` and width ``w`` (numbers,
    or tensors that broadcast against ``priors[..., 0]``)."""
    return (priors[..., 0] >= -border) & (priors[..., 1] >= -border) & \
        (priors[..., 2] < w + border) & (priors[..., 3] < h + border)


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
    gt_inds = max_iou_assign(rpn_head.assigner, iou(gt_boxes, all_priors),
                             gt_valid, valid)
    pos, neg = random_sample(rpn_head.sampler, gt_inds, keys)
    # the RPN's ground truth has label 0
    labels, label_weights, bbox_targets, bbox_weights = targets(
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
    gt_inds = max_iou_assign(assigner, iou(gt_boxes, proposals), gt_valid,
                             proposal_valid)
    priors = proposals
    if sampler.add_gt_as_proposals:
        g = gt_boxes.size(1)
        own = torch.arange(1, g + 1, device=gt_inds.device).expand_as(gt_valid)
        gt_inds = torch.cat([own.masked_fill(~gt_valid, -1), gt_inds], 1)
        priors = torch.cat([gt_boxes, proposals], 1)
    pos, neg = random_sample(sampler, gt_inds, keys)
    return priors, gt_inds, pos, neg


def _accuracy(cls_score: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
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
    if not hasattr(sampler, 'select'):
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
            acc=_accuracy(cls_score, labels, sampled.view(-1)))
    loss_cls = bbox_head.loss_cls(
        cls_score, labels, label_weights, reduction_override='none')
    loss_bbox = reg_loss(
        bbox_head.loss_bbox,
        bbox_pred,
        bbox_targets,
        bbox_weights,
        reduction='none').sum(1)
    hard = (loss_cls + loss_bbox).detach().view(n, m).masked_fill(
        ~sampled, float('-inf'))
    order = hard.sort(dim=1, descending=True, stable=True)[1]
    if sampler.nms_thr is not None:
        boxes = _take(rois.view(n, m, 5)[..., 1:].float(), order)
        keep = sorted_nms(boxes, _take(sampled, order), sampler.nms_thr,
                          min(sampler.num, m))
        kept = _scatter_kept(order, keep, m)
    else:
        kept = torch.zeros_like(sampled).scatter_(
            1, order[:, :min(sampler.num, m)], True)
    kept = (kept & sampled).view(-1)
    weight = kept.to(loss_cls.dtype)
    num_kept = weight.sum().clamp(min=1)
    return dict(
        loss_cls=(loss_cls * weight).sum() / num_kept,
        loss_bbox=(loss_bbox * weight).sum() / num_kept,
        acc=_accuracy(cls_score, labels, kept))


def _scatter_kept(order: Tensor, keep: Tensor, m: int) -> Tensor:
    """(N, M) mask of the slots that ``sorted_nms`` kept, ``keep`` holding
    positions in ``order`` padded with -1."""
    slots = _take(order, keep.clamp(min=0)).masked_fill(keep < 0, m)
    mask = torch.zeros(
        order.size(0), m + 1, dtype=torch.bool, device=order.device)
    return mask.scatter_(1, slots, True)[:, :m]
