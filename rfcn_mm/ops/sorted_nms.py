import torch
from torch import Tensor

from ._ext_loader import get_ext


def sorted_nms(boxes: Tensor, valid: Tensor, iou_threshold: float,
               max_num: int) -> Tensor:
    """Greedy NMS of boxes already sorted by descending score, batched over
    images, with a fixed-size result.

    Box ``i`` of an image is kept when it is valid and no kept box before it
    overlaps it by IoU > ``iou_threshold``; the first ``max_num`` kept boxes
    of each image are returned. This is the keep set of ``mmcv.ops.nms``
    (its overlap test, offset 0) truncated to ``max_num``, for boxes in
    score order, but without a host synchronisation and with output shapes
    that depend on the input shapes only, so that it can run inside a CUDA
    graph. On CUDA the overlap mask is walked 64 boxes at a time (a few
    memory latencies per 64 boxes, not one per kept box), and the walk stops
    once ``max_num`` boxes are kept (an RPN keeping 300 of 6000 boxes reads
    a fraction of it).

    Args:
        boxes (Tensor): (N, M, 4) float32 boxes (x1, y1, x2, y2) of N images,
            each image's rows in descending score order.
        valid (Tensor): (N, M) bool; invalid boxes are never kept and
            suppress nothing (padding, boxes under a score threshold).
        iou_threshold (float): Suppress overlaps with IoU above this.
        max_num (int): Boxes kept per image at most (> 0).

    Returns:
        Tensor: (N, max_num) int64 row indices into ``boxes`` of the kept
        boxes of each image in score order, padded with -1.
    """
    if not isinstance(boxes, Tensor) or not isinstance(valid, Tensor):
        raise TypeError('sorted_nms: boxes and valid must be tensors, got '
                        f'{type(boxes).__name__} and {type(valid).__name__}')
    if boxes.dim() != 3 or boxes.size(2) != 4:
        raise ValueError('sorted_nms: boxes must be shaped (N, M, 4), got '
                         f'shape {tuple(boxes.shape)}')
    if boxes.dtype != torch.float32:
        raise TypeError(f'sorted_nms: boxes must be float32, got '
                        f'{boxes.dtype}')
    if valid.shape != boxes.shape[:2]:
        raise ValueError(f'sorted_nms: valid must be shaped (N, M) = '
                         f'{tuple(boxes.shape[:2])}, got shape '
                         f'{tuple(valid.shape)}')
    if valid.dtype != torch.bool:
        raise TypeError(f'sorted_nms: valid must be a bool tensor, got '
                        f'{valid.dtype}')
    if boxes.device != valid.device:
        raise ValueError('sorted_nms: boxes and valid must be on the same '
                         f'device, got {boxes.device} and {valid.device}')
    if not isinstance(max_num, int) or max_num <= 0:
        raise ValueError(f'sorted_nms: max_num must be a positive int, got '
                         f'{max_num!r}')
    if isinstance(iou_threshold, bool) or \
            not isinstance(iou_threshold, (int, float)) or \
            not 0 <= iou_threshold <= 1:
        raise ValueError('sorted_nms: iou_threshold must be a number in '
                         f'[0, 1], got {iou_threshold!r}')
    return get_ext().sorted_nms(boxes, valid, float(iou_threshold), max_num)
