from typing import Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from .ps_bbox_head import PSBBoxHead


@MODELS.register_module()
class DeformPSBBoxHead(PSBBoxHead):
    """Deformable R-FCN's box head (Dai et al. 2017): :class:`PSBBoxHead`
    with deformable position-sensitive RoI pooling.

    Beside the score-map convs, two 1x1 convs on the same reduced map give
    offset maps: 2 * k * k * (C + 1) channels for the class maps (one
    offset field per class, the reference's ``rfcn_cls_offset_t``; or
    2 * k * k shared by all classes with ``class_agnostic_offsets``) and
    2 * k * k for the box maps (``rfcn_bbox_offset_t``). Per RoI, the
    offset maps are pooled without offsets into (R, 2 * groups, k, k)
    normalised offsets, which then move the bins of the main pooling
    (``trans_std`` scales them); average voting follows as in R-FCN.

    The offset convs start at zero and :meth:`init_weights` keeps them
    there (whatever ``init_cfg`` says), so an untrained head pools as the
    plain one; with the continuous coordinates of
    :class:`~rfcn_mm.ops.DeformPSRoIPool` it equals a PS RoI Align head.

    Args:
        class_agnostic_offsets (bool): One offset field for all class maps
            (2 k² channels instead of 2 k² (C + 1): far cheaper for COCO's
            81 classes). Defaults to False (the reference).
        **kwargs: :class:`PSBBoxHead`'s arguments. The RoI extractor's
            ``roi_layer`` must be ``DeformPSRoIPool``.
    """

    def __init__(self, class_agnostic_offsets: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_agnostic_offsets = class_agnostic_offsets
        bins = self.roi_feat_area
        self.offset_groups = 1 if class_agnostic_offsets else \
            self.cls_channels
        self.conv_cls_offset = nn.Conv2d(self.mid_channels,
                                         2 * bins * self.offset_groups, 1)
        self.conv_reg_offset = nn.Conv2d(self.mid_channels, 2 * bins, 1)
        self._zero_offsets()

    def _zero_offsets(self) -> None:
        for conv in (self.conv_cls_offset, self.conv_reg_offset):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def init_weights(self) -> None:
        """``init_cfg`` for the other layers; the offset convs stay 0."""
        super().init_weights()
        self._zero_offsets()

    @property
    def map_channels(self) -> Tuple[int, int, int, int]:
        """Channels of the class maps, box maps, class offset maps and box
        offset maps in :meth:`score_maps`' output."""
        bins = self.roi_feat_area
        return (bins * self.cls_channels, bins * self.reg_channels,
                2 * bins * self.offset_groups, 2 * bins)

    def score_maps(self, x: Tensor) -> Tensor:
        """The score maps of :class:`PSBBoxHead`, then the offset maps.

        Returns:
            Tensor: (N, sum(map_channels), H, W).
        """
        x = self.reduce(x)
        return torch.cat([
            self.conv_cls(x),
            self.conv_reg(x),
            self.conv_cls_offset(x),
            self.conv_reg_offset(x)
        ],
                         dim=1)

    def pool(self, extractor, maps: Tensor, rois: Tensor) -> Tensor:
        """Pool the offset maps without offsets, then the class and box maps
        with them.

        Returns:
            Tensor: (R, pooled_channels, k, k), as :class:`PSBBoxHead`.
        """
        cls_maps, reg_maps, cls_off, reg_off = maps.split(
            self.map_channels, dim=1)
        cls = extractor.pool(cls_maps, rois, extractor.pool(cls_off, rois))
        reg = extractor.pool(reg_maps, rois, extractor.pool(reg_off, rois))
        return torch.cat([cls, reg], dim=1)
