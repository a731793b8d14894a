"""Batches in slots: a fixed number of rows per image, with a validity
mask, so that shapes depend on the input shape only."""
from typing import Tuple

import torch
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor

_CONSTANTS: dict = {}


def take_slots(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx`` (N, K) of each image of ``x`` (N, M) or (N, M, 4)."""
    if x.dim() == 3:
        idx = idx[..., None].expand(-1, -1, x.size(2))
    return x.gather(1, idx)


def device_constant(values, like: Tensor) -> Tensor:
    """``like.new_tensor(values).view(1, -1)``, made once per device and
    dtype: a host-to-device copy cannot be captured in a CUDA graph."""
    key = (tuple(values), like.device, like.dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = like.new_tensor(values).view(1, -1)
    return _CONSTANTS[key]


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


def proposals_to_rois(proposals: Tensor, valid: Tensor) -> Tensor:
    """(N * P, 5) RoIs ``(batch_index, x1, y1, x2, y2)``; invalid slots get
    batch index -1, which the PS RoI ops answer with zeros."""
    n, p = valid.shape
    idx = torch.arange(n, device=proposals.device, dtype=proposals.dtype)
    idx = idx[:, None].expand(n, p).masked_fill(~valid, -1)
    return torch.cat([idx[..., None], proposals], dim=-1).view(-1, 5)


def inside_image(priors: Tensor, h, w, border) -> Tensor:
    """mmdet's ``anchor_inside_flags``: which (..., 4) priors lie within
    ``border`` pixels of an image of height ``h`` and width ``w`` (numbers,
    or tensors that broadcast against ``priors[..., 0]``)."""
    return (priors[..., 0] >= -border) & (priors[..., 1] >= -border) & \
        (priors[..., 2] < w + border) & (priors[..., 3] < h + border)
