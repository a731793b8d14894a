"""Labels, label weights, box targets and box weights of slots, as
``AnchorHead._get_targets_single`` and ``BBoxHead._get_targets_single``
make them."""
from typing import Tuple

import torch
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from torch import Tensor

from .box_coding import encode_deltas
from .slots import take_slots


def slot_targets(priors: Tensor, gt_boxes: Tensor, gt_labels: Tensor,
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
    deltas = encode_deltas(coder, priors, take_slots(gt_boxes, idx))
    bbox_targets = torch.where(pos[..., None], deltas, 0.)
    bbox_weights = pos[..., None].expand_as(bbox_targets).float()
    return labels, label_weights, bbox_targets, bbox_weights
