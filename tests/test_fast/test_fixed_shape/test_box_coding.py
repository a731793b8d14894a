"""The fixed-shape box arithmetic against mmdet's."""
import torch
from helpers.fast_training import random_boxes

from rfcn_mm.fast.fixed_shape.box_coding import pairwise_iou


def test_iou_is_mmdets_bbox_overlaps():
    from mmdet.structures.bbox import bbox_overlaps
    g = torch.Generator().manual_seed(4)
    a = random_boxes(g, 3 * 7).view(3, 7, 4)
    b = random_boxes(g, 3 * 50).view(3, 50, 4)
    a[0, 0] = torch.tensor([5., 5., 5., 9.])  # zero area
    b[1, :7] = a[1]  # identical boxes: IoU 1
    assert torch.equal(pairwise_iou(a, b), bbox_overlaps(a, b))
