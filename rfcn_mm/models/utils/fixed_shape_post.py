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

import numpy as np
import torch
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from torch import Tensor

from rfcn_mm.ops import sorted_nms


def nms_cfg_problems(name: str, nms) -> list:
    """``[problem]`` when the NMS config ``nms`` (at key ``name``) is not
    mmcv's plain NMS, which :func:`rfcn_mm.ops.sorted_nms` reproduces;
    ``[]`` otherwise."""
    # any other key (offset, score_threshold, ...) changes mmcv's NMS
    extra = set(
        nms or {}) - {'type', 'iou_threshold', 'class_agnostic', 'split_thr'}
    if not nms or nms.get('type', 'nms') != 'nms' or extra:
        return [
            f'{name} must be dict(type=\'nms\', iou_threshold=...), '
            f'got {nms}'
        ]
    return []


def check_fixed_shape_support(detector) -> None:
    """Raise ValueError naming the first part of ``detector`` (an RFCN) that
    the fixed-shape stage does not reproduce."""
    rpn, head = detector.rpn_head, detector.roi_head.bbox_head
    rpn_cfg, rcnn_cfg = detector.test_cfg.rpn, detector.test_cfg.rcnn
    problems = []
    if len(rpn.prior_generator.strides) != 1:
        problems.append('the RPN must have one level')
    for name, coder in (('rpn_head', rpn.bbox_coder), ('bbox_head',
                                                       head.bbox_coder)):
        if type(coder) is not DeltaXYWHBBoxCoder:
            problems.append(f'{name}.bbox_coder must be DeltaXYWHBBoxCoder, '
                            f'got {type(coder).__name__}')
    if getattr(head, 'custom_cls_channels', False):
        problems.append('bbox_head with custom_cls_channels')
    for name, nms in (('test_cfg.rpn.nms', rpn_cfg.get('nms')),
                      ('test_cfg.rcnn.nms', rcnn_cfg.get('nms'))):
        problems += nms_cfg_problems(name, nms)
    if rpn_cfg.get('max_per_img', 0) <= 0:
        problems.append('test_cfg.rpn.max_per_img must be positive')
    if problems:
        raise ValueError(
            'fixed_shape_post=True cannot reproduce this model\'s '
            'post-processing: ' + '; '.join(problems) +
            '. Use optimize_for_inference(fixed_shape_post=False).')


def _clip(boxes: Tensor, img_hw: Tensor) -> Tensor:
    """``delta2bbox``'s clamp to [0, w] x [0, h], with (N, 2) image sizes
    broadcast over boxes of shape (N, ..., 4)."""
    h = img_hw[:, 0].view(-1, *([1] * (boxes.dim() - 1)))
    w = img_hw[:, 1].view(-1, *([1] * (boxes.dim() - 1)))
    bound = torch.cat([w, h, w, h], dim=-1)
    return torch.minimum(boxes.clamp(min=0), bound)


def _take(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx`` (N, K) of each image of ``x`` (N, M) or (N, M, 4)."""
    if x.dim() == 3:
        idx = idx[..., None].expand(-1, -1, x.size(2))
    return x.gather(1, idx)


_CONSTANTS: dict = {}


def _constant(values, like: Tensor) -> Tensor:
    """``like.new_tensor(values).view(1, -1)``, made once per device and
    dtype: a host-to-device copy cannot be captured in a CUDA graph."""
    key = (tuple(values), like.device, like.dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = like.new_tensor(values).view(1, -1)
    return _CONSTANTS[key]


def _decode(coder: DeltaXYWHBBoxCoder, priors: Tensor, deltas: Tensor,
            img_hw: Tensor) -> Tensor:
    """``coder.decode(priors, deltas, max_shape=img_shape)`` for (N, M, 4)
    priors and deltas of N images of different sizes: mmdet's
    ``delta2bbox``, operation for operation, with the means and stds kept
    on the device."""
    n, m = deltas.shape[:2]
    deltas = deltas.reshape(-1, 4)
    rois = priors.reshape(-1, 4)
    denorm = deltas * _constant(coder.stds, deltas) + _constant(
        coder.means, deltas)
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    pxy = ((rois[:, :2] + rois[:, 2:]) * 0.5)
    pwh = (rois[:, 2:] - rois[:, :2])
    dxy_wh = pwh * dxy
    max_ratio = np.abs(np.log(16 / 1000))  # decode's wh_ratio_clip
    if coder.add_ctr_clamp:
        dxy_wh = torch.clamp(dxy_wh, max=coder.ctr_clamp, min=-coder.ctr_clamp)
        dwh = torch.clamp(dwh, max=max_ratio)
    else:
        dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - (gwh * 0.5), gxy + (gwh * 0.5)], dim=-1)
    boxes = boxes.view(n, m, 4)
    return _clip(boxes, img_hw) if coder.clip_border else boxes


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
    boxes = _decode(rpn_head.bbox_coder, priors[order], _take(deltas, order),
                    img_hw)
    valid = torch.ones_like(scores, dtype=torch.bool)
    if cfg.get('min_bbox_size', -1) >= 0:
        w = boxes[..., 2] - boxes[..., 0]
        h = boxes[..., 3] - boxes[..., 1]
        valid = (w > cfg.min_bbox_size) & (h > cfg.min_bbox_size)
    keep = sorted_nms(boxes, valid, cfg.nms.iou_threshold, cfg.max_per_img)
    kept = keep >= 0
    return _take(boxes, keep.clamp(min=0)) * kept[..., None], kept


def proposals_to_rois(proposals: Tensor, valid: Tensor) -> Tensor:
    """(N * P, 5) RoIs ``(batch_index, x1, y1, x2, y2)``; invalid slots get
    batch index -1, which the PS RoI ops answer with zeros."""
    n, p = valid.shape
    idx = torch.arange(n, device=proposals.device, dtype=proposals.dtype)
    idx = idx[:, None].expand(n, p).masked_fill(~valid, -1)
    return torch.cat([idx[..., None], proposals], dim=-1).view(-1, 5)


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
    boxes = _decode(bbox_head.bbox_coder, priors,
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
        _take(nms_boxes, order), _take(valid, order), cfg.nms.iou_threshold,
        max_num)
    idx = _take(order, keep.clamp(min=0))
    return (_take(boxes, idx), _take(scores, idx), _take(labels, idx), keep
            >= 0)
