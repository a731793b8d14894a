from typing import List

import torch
from mmcv.ops import nms
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


@MODELS.register_module()
class PyFasterRCNNRPNHead(RPNHead):
    """mmdet's :class:`RPNHead` (sigmoid scores, one level) with the
    proposals of py-faster-rcnn's ``ProposalLayer`` (py-R-FCN,
    Deformable-ConvNets), for models trained with it.

    At test time, per image: decode every anchor, clip to ``[0, W - 1] x
    [0, H - 1]``, drop boxes smaller than ``min_bbox_size`` *original*
    pixels (``x2 - x1 + 1 >= min_bbox_size * scale``), keep the
    ``nms_pre`` best, NMS with ``+1`` areas (``nms.iou_threshold``), keep
    ``max_per_img``. mmdet's head keeps the ``nms_pre`` best before it
    drops small boxes, measures them without the ``+1`` in input pixels
    and, with ``rescale``, runs NMS in original pixels; each changes which
    proposals survive. A sigmoid RPN gives the reference's softmax
    probability when its classifier is the foreground minus the background
    weights of the two-way one (what the converters write). Training is
    :class:`RPNHead`'s.

    Use it with :class:`PyFasterRCNNAnchorGenerator` and
    :class:`PyFasterRCNNBBoxCoder`; ``test_cfg`` keys: ``nms_pre``,
    ``max_per_img``, ``nms=dict(iou_threshold=...)``, ``min_bbox_size``.
    """

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: ConfigDict,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        cfg = ConfigDict(self.test_cfg if cfg is None else cfg)
        if len(cls_score_list) != 1:
            raise ValueError('PyFasterRCNNRPNHead predicts from one feature '
                             f'level (conv4), got {len(cls_score_list)}')
        if not self.use_sigmoid_cls:
            raise ValueError('PyFasterRCNNRPNHead needs loss_cls with '
                             'use_sigmoid=True (the converters write the '
                             'two-way softmax as one sigmoid logit)')
        cls_score, bbox_pred = cls_score_list[0], bbox_pred_list[0]
        # (A, H, W) -> location-major, anchor-minor, as the anchors
        scores = cls_score.permute(1, 2, 0).reshape(-1).sigmoid()
        deltas = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
        boxes = self.bbox_coder.decode(
            mlvl_priors[0], deltas, max_shape=img_meta['img_shape'])
        scale = float(img_meta.get('scale_factor', (1.0, 1.0))[0])
        min_size = float(cfg.get('min_bbox_size', 0)) * scale
        ws = boxes[:, 2] - boxes[:, 0] + 1
        hs = boxes[:, 3] - boxes[:, 1] + 1
        keep = (ws >= min_size) & (hs >= min_size)
        boxes, scores = boxes[keep], scores[keep]
        order = torch.sort(scores, descending=True, stable=True)[1]
        if cfg.get('nms_pre', -1) > 0:
            order = order[:cfg.nms_pre]
        boxes, scores = boxes[order], scores[order]
        if boxes.numel():
            _, kept = nms(boxes, scores, cfg.nms.iou_threshold, offset=1)
            boxes, scores = boxes[kept], scores[kept]
        if cfg.get('max_per_img', -1) > 0:
            boxes, scores = boxes[:cfg.max_per_img], scores[:cfg.max_per_img]
        if rescale:
            factor = boxes.new_tensor(img_meta['scale_factor']).repeat(2)
            boxes = boxes / factor
        results = InstanceData()
        results.bboxes = boxes
        results.scores = scores
        results.labels = scores.new_zeros(len(scores), dtype=torch.long)
        return results
