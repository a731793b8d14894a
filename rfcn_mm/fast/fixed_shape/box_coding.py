"""mmdet's box arithmetic (``delta2bbox``, ``bbox2delta``,
``bbox_overlaps``) for batches in slots, operation for operation, with its
constants kept on the device."""
import numpy as np
import torch
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from torch import Tensor

from .slots import device_constant


def clip_to_images(boxes: Tensor, img_hw: Tensor) -> Tensor:
    """``delta2bbox``'s clamp to [0, w] x [0, h], with (N, 2) image sizes
    broadcast over boxes of shape (N, ..., 4)."""
    h = img_hw[:, 0].view(-1, *([1] * (boxes.dim() - 1)))
    w = img_hw[:, 1].view(-1, *([1] * (boxes.dim() - 1)))
    bound = torch.cat([w, h, w, h], dim=-1)
    return torch.minimum(boxes.clamp(min=0), bound)


def decode_deltas(coder: DeltaXYWHBBoxCoder, priors: Tensor, deltas: Tensor,
                  img_hw: Tensor) -> Tensor:
    """``coder.decode(priors, deltas, max_shape=img_shape)`` for (N, M, 4)
    priors and deltas of N images of different sizes: mmdet's
    ``delta2bbox``, operation for operation, with the means and stds kept
    on the device."""
    n, m = deltas.shape[:2]
    deltas = deltas.reshape(-1, 4)
    rois = priors.reshape(-1, 4)
    denorm = deltas * device_constant(coder.stds, deltas) + device_constant(
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
    return clip_to_images(boxes, img_hw) if coder.clip_border else boxes


def encode_deltas(coder: DeltaXYWHBBoxCoder, priors: Tensor,
                  gts: Tensor) -> Tensor:
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
    return deltas.sub(device_constant(coder.means, deltas).view(shape)).div(
        device_constant(coder.stds, deltas).view(shape))


def pairwise_iou(gts: Tensor, priors: Tensor) -> Tensor:
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
