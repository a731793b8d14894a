import torch
from torch import Tensor

from ._ext_loader import check_cuda_build, dtype_name, get_ext

MAX_CUDA_BOXES = 65536  # the CUDA kernel's limit (csrc/pytorch/sorted_nms.cpp)


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
    if isinstance(max_num, bool) or not isinstance(max_num, int):
        raise ValueError(f'sorted_nms: max_num must be a positive int, got '
                         f'{max_num!r}')
    if isinstance(iou_threshold, bool) or \
            not isinstance(iou_threshold, (int, float)):
        raise ValueError('sorted_nms: iou_threshold must be a number in '
                         f'[0, 1], got {iou_threshold!r}')
    get_ext()
    check_sorted_nms_args(boxes, valid, float(iou_threshold), max_num)
    return torch.ops.rfcn_mm.sorted_nms(boxes, valid, float(iou_threshold),
                                        max_num)


def check_sorted_nms_args(boxes: Tensor, valid: Tensor, iou_threshold: float,
                          max_num: int) -> None:
    """The checks of ``rfcn_mm::sorted_nms``, made by :func:`sorted_nms`
    and by the fake kernel; the C++ kernels repeat them with the same
    messages and exception types."""
    if boxes.dim() != 3 or boxes.size(2) != 4:
        raise ValueError('sorted_nms: boxes must be shaped (N, M, 4), got '
                         f'shape {list(boxes.shape)}')
    if boxes.dtype != torch.float32:
        raise TypeError(f'sorted_nms: boxes must be float32, got '
                        f'{dtype_name(boxes.dtype)}')
    if valid.shape != boxes.shape[:2]:
        raise ValueError(f'sorted_nms: valid must be shaped (N, M) = '
                         f'({boxes.size(0)}, {boxes.size(1)}), got shape '
                         f'{list(valid.shape)}')
    if valid.dtype != torch.bool:
        raise TypeError(f'sorted_nms: valid must be a bool tensor, got '
                        f'{dtype_name(valid.dtype)}')
    if boxes.device != valid.device:
        raise ValueError('sorted_nms: boxes and valid must be on the same '
                         f'device, got {boxes.device} and {valid.device}')
    if max_num <= 0:
        raise ValueError(f'sorted_nms: max_num must be a positive int, got '
                         f'{max_num}')
    if not 0 <= iou_threshold <= 1:
        raise ValueError('sorted_nms: iou_threshold must be a number in '
                         f'[0, 1], got {iou_threshold:g}')
    if boxes.size(1) >= 2**31:
        raise ValueError('sorted_nms: fewer than 2^31 boxes per image, got '
                         f'{boxes.size(1)}')
    if boxes.is_cuda and boxes.size(1) > MAX_CUDA_BOXES:
        raise ValueError(f'sorted_nms: at most {MAX_CUDA_BOXES} boxes per '
                         'image on CUDA (the overlap mask takes M * M / 8 '
                         f'bytes per image), got {boxes.size(1)}')
    check_cuda_build(boxes, 'sorted_nms')


def _sorted_nms_fake(boxes: Tensor, valid: Tensor, iou_threshold: float,
                     max_num: int) -> Tensor:
    check_sorted_nms_args(boxes, valid, iou_threshold, max_num)
    return boxes.new_empty((boxes.size(0), max_num), dtype=torch.int64)


# rfcn_mm::sorted_nms is declared and given its CPU and CUDA kernels in
# csrc/pytorch/sorted_nms.cpp; no autograd (its output is indices)
if get_ext(required=False) is not None:
    torch.library.register_fake('rfcn_mm::sorted_nms', _sorted_nms_fake)
