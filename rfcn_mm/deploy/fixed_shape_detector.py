"""FastRFCN's fixed-shape inference as a module of tensors only: what
``tools/deployment/export.py`` exports."""
from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

from rfcn_mm.fast import FastRFCN
from rfcn_mm.fast.fixed_shape import check_fixed_shape_support


class FixedShapeDetector(nn.Module):
    """``FastRFCN.fixed_shape_forward`` with the count of detections per
    image as its last output.

    Inputs: ``images`` (N, 3, H, W) float32, preprocessed as the config's
    data preprocessor does (BGR to RGB, mean and std, padding with 0 after
    normalisation to H x W), and ``img_info`` (N, 4) float32: the height
    and width of each image inside the padded batch and the factors (x, y)
    applied to its boxes (``1 / scale_factor`` for boxes in the original
    image, or ones).

    Outputs: ``boxes`` (N, D, 4), ``scores`` (N, D), ``labels`` (N, D)
    int64 and ``num_dets`` (N,) int64, D = ``test_cfg.rcnn.max_per_img``;
    the first ``num_dets[i]`` rows of image i are its detections in
    descending score order, the rest is padding.

    Args:
        detector (FastRFCN): In eval mode; its config must be one the
            fixed-shape stage reproduces (checked, with the key named).
    """

    def __init__(self, detector: FastRFCN) -> None:
        super().__init__()
        if not isinstance(detector, FastRFCN):
            raise TypeError('FixedShapeDetector needs a FastRFCN, got '
                            f'{type(detector).__name__}')
        check_fixed_shape_support(detector)
        self.detector = detector.eval()

    def forward(self, images: Tensor,
                img_info: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        boxes, scores, labels, valid = self.detector.fixed_shape_forward(
            images, img_info)
        return boxes, scores, labels, valid.sum(1)

    @torch.no_grad()
    def warm_up(self, images: Tensor, img_info: Tensor) -> None:
        """Run once eagerly, so that the anchors and constants the detector
        caches per shape and device exist before tracing (they become
        constants of the traced program)."""
        self(images, img_info)
