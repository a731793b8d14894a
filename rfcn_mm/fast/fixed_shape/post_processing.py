"""R-FCN's sparse inference stage with shapes fixed by the input shape.

mmdet's RPN and bbox post-processing select boxes with boolean masks and
``nonzero`` (data-dependent shapes and host synchronisations) and run
mmcv's NMS, which synchronises too. The functions here compute the same
detections with padded tensors instead: every image keeps exactly
``max_per_img`` proposal and detection slots, unused slots are marked
invalid, and NMS is :func:`rfcn_mm.ops.sorted_nms`. So the whole of
inference can be captured in one CUDA graph and needs one synchronisation
per batch, to read how many detections each image has.

Each step follows mmdet 3.3's code (``RPNHead._predict_by_feat_single`` and
``_bbox_post_process``, ``BBoxHead._predict_by_feat_single``,
``multiclass_nms`` and mmcv's ``batched_nms``) operation for operation, so
the detections agree with mmdet's up to the order of equal scores.
"""
from typing import Tuple

import torch
from torch import Tensor

from rfcn_mm.ops import sorted_nms
from .box_coding import decode_deltas
from .slots import take_slots


def fixed_shape_proposals(rpn_head, cls_score: Tensor, bbox_pred: Tensor,
                          priors: Tensor, img_hw: Tensor,
                          cfg) -> Tuple[Tensor, Tensor]:
    """The RPN's proposals of a batch in fixed-size slots.

    Args:
        rpn_head (RPNHead): The detector's RPN head.
        cls_score (Tensor): (N, A * C, H, W) RPN class scores, C = 1 with
            sigmoid classification.
        bbox_pred (Tensor): (N, A * 4, H, W) RPN box deltas.
        priors (Tensor): (H * W * A, 4) anchors of the map, as
            ``rpn_head.prior_generator.grid_priors`` gives them.
        img_hw (Tensor): (N, 2) float (height, width) of each image.
        cfg (ConfigDict): ``test_cfg.rpn`` (``nms_pre``, ``nms``,
            ``max_per_img``, ``min_bbox_size``).

    Returns:
        tuple[Tensor, Tensor]: proposals (N, P, 4) and their validity
        (N, P), P = ``cfg.max_per_img``, in descending score order.
    """
    n = cls_score.size(0)
    c = rpn_head.cls_out_channels
    scores = cls_score.permute(0, 2, 3, 1).reshape(n, -1, c)
    scores = scores.sigmoid() if rpn_head.use_sigmoid_cls else \
        scores.softmax(-1)[..., :-1]
    scores = scores.reshape(n, -1)
    deltas = bbox_pred.permute(0, 2, 3, 1).reshape(n, -1, 4)
    nms_pre = cfg.get('nms_pre', -1)
    # mmdet keeps the nms_pre best; mmcv's NMS sorts the rest by score
    scores, order = scores.sort(dim=1, descending=True, stable=True)
    if 0 < nms_pre < scores.size(1):
        scores, order = scores[:, :nms_pre], order[:, :nms_pre]
    boxes = decode_deltas(rpn_head.bbox_coder, priors[order],
                          take_slots(deltas, order), img_hw)
    valid = torch.ones_like(scores, dtype=torch.bool)
    if cfg.get('min_bbox_size', -1) >= 0:
        w = boxes[..., 2] - boxes[..., 0]
        h = boxes[..., 3] - boxes[..., 1]
        valid = (w > cfg.min_bbox_size) & (h > cfg.min_bbox_size)
    keep = sorted_nms(boxes, valid, cfg.nms.iou_threshold, cfg.max_per_img)
    kept = keep >= 0
    return take_slots(boxes, keep.clamp(min=0)) * kept[..., None], kept


def fixed_shape_detections(bbox_head, rois: Tensor, roi_valid: Tensor,
                           cls_score: Tensor, bbox_pred: Tensor,
                           img_hw: Tensor, rescale: Tensor,
                           cfg) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Decoding, rescaling and multi-class NMS of a batch in fixed slots.

    Args:
        bbox_head (BBoxHead): The R-FCN bbox head.
        rois (Tensor): (N * P, 5) RoIs from :func:`proposals_to_rois`.
        roi_valid (Tensor): (N, P) validity of the RoIs.
        cls_score (Tensor): (N * P, C + 1) class logits.
        bbox_pred (Tensor): (N * P, 4) or (N * P, 4 * C) box deltas.
        img_hw (Tensor): (N, 2) float (height, width) of each image.
        rescale (Tensor): (N, 2) float factors (x, y) applied to the boxes
            after clipping (``1 / scale_factor``, or ones).
        cfg (ConfigDict): ``test_cfg.rcnn`` (``score_thr``, ``nms``,
            ``max_per_img``).

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]: boxes (N, D, 4), scores
        (N, D), labels (N, D) and validity (N, D) of the detections in
        descending score order, D = ``cfg.max_per_img`` (or all candidates
        when it is not positive).
    """
    n, p = roi_valid.shape
    num_classes = bbox_head.num_classes
    scores = cls_score.softmax(-1).view(n, p, -1)[..., :-1]
    reps = 1 if bbox_head.reg_class_agnostic else num_classes
    priors = rois[:, None, 1:].expand(-1, reps, 4).reshape(n, p * reps, 4)
    boxes = decode_deltas(bbox_head.bbox_coder, priors,
                          bbox_pred.reshape(n, p * reps, 4), img_hw)
    boxes = boxes * rescale.repeat(1, 2)[:, None]
    boxes = boxes.view(n, p, reps, 4).expand(n, p, num_classes, 4)
    boxes = boxes.reshape(n, -1, 4)
    scores = scores.reshape(n, -1)
    labels = torch.arange(num_classes, device=scores.device).repeat(n, p)
    valid = (scores > cfg.score_thr) & roi_valid[..., None].expand(
        n, p, num_classes).reshape(n, -1)
    nms_boxes = boxes
    if not cfg.nms.get('class_agnostic', False):
        # mmcv's batched_nms: shift each class by (largest coordinate + 1)
        # of the image's candidates so that classes never overlap
        top = boxes.masked_fill(~valid[..., None], float('-inf')).amax((1, 2))
        top = torch.where(valid.any(1), top, torch.zeros_like(top))
        nms_boxes = boxes + (labels.to(boxes) * (top[:, None] + 1))[..., None]
    # stable: equal scores keep mmdet's candidate order (RoI, then class)
    order = scores.masked_fill(~valid, float('-inf')).sort(
        dim=1, descending=True, stable=True)[1]
    max_num = cfg.max_per_img if cfg.max_per_img > 0 else scores.size(1)
    keep = sorted_nms(
        take_slots(nms_boxes, order), take_slots(valid, order),
        cfg.nms.iou_threshold, max_num)
    idx = take_slots(order, keep.clamp(min=0))
    return (take_slots(boxes, idx), take_slots(scores, idx),
            take_slots(labels, idx), keep >= 0)
