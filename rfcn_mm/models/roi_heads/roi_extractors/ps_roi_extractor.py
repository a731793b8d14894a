from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from torch import Tensor

from rfcn_mm import ops

PS_ROI_LAYERS = {
    'PSRoIPool': ops.PSRoIPool,
    'PSRoIAlign': ops.PSRoIAlign,
    'DeformPSRoIPool': ops.DeformPSRoIPool
}


@MODELS.register_module()
class PSRoIExtractor(BaseRoIExtractor):
    """Position-sensitive RoI extractor over one feature map.

    Pools k x k position-sensitive score maps into a (C_out, k, k) grid per
    RoI with :class:`rfcn_mm.ops.PSRoIPool`,
    :class:`rfcn_mm.ops.PSRoIAlign` or, for Deformable R-FCN's head,
    :class:`rfcn_mm.ops.DeformPSRoIPool` (see :meth:`pool`).

    Args:
        roi_layer (dict): The op, ``dict(type='PSRoIPool', output_size=7)``
            or ``dict(type='PSRoIAlign', output_size=7, sampling_ratio=2)``.
        out_channels (int, optional): Pooled channels C_out; the input must
            have C_out * k * k channels. None lets the RoI head fill it in
            from its bbox head. Defaults to None.
        featmap_strides (list[int]): Stride of the single input map.
            Defaults to [16].
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 roi_layer: ConfigType = dict(type='PSRoIPool', output_size=7),
                 out_channels: Optional[int] = None,
                 featmap_strides: List[int] = [16],
                 init_cfg: OptMultiConfig = None) -> None:
        if len(featmap_strides) != 1:
            raise ValueError('PSRoIExtractor pools one feature map, got '
                             f'featmap_strides={featmap_strides}')
        super().__init__(roi_layer, out_channels, featmap_strides, init_cfg)
        kh, kw = self.roi_layers[0].output_size
        self.bins = kh * kw

    def build_roi_layers(self, layer_cfg: ConfigType,
                         featmap_strides: List[int]) -> nn.ModuleList:
        """Build the project's PS op (mmcv.ops has none).

        The RoI head's RoIs come from ``bbox2roi`` over the batch, so their
        batch indices are valid by construction: the op's host-side check
        (a synchronisation on CUDA) is off unless ``roi_layer`` turns it on
        with ``check_batch_idx=True``.
        """
        cfg = dict(layer_cfg)
        cfg.setdefault('check_batch_idx', False)
        layer_type = cfg.pop('type')
        if isinstance(layer_type, str):
            if layer_type not in PS_ROI_LAYERS:
                raise KeyError(
                    f'PSRoIExtractor: unknown roi_layer type "{layer_type}", '
                    f'expected one of {sorted(PS_ROI_LAYERS)}')
            layer_type = PS_ROI_LAYERS[layer_type]
        return nn.ModuleList(
            [layer_type(spatial_scale=1 / s, **cfg) for s in featmap_strides])

    def forward(self,
                feats: Tuple[Tensor],
                rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """Pool position-sensitive maps.

        Args:
            feats (tuple[Tensor]): One map of shape (N, C_out * k * k, H, W).
            rois (Tensor): RoIs of shape (R, 5) in image coordinates.
            roi_scale_factor (float, optional): Rescale RoIs about their
                centres first. Defaults to None.

        Returns:
            Tensor: Pooled scores of shape (R, C_out, k, k); float32 when
            the maps are float16/bfloat16 (AMP): the maps are pooled in
            float32, because RoIs cast to bfloat16 would lose whole pixels
            (its spacing is 4 between 512 and 1024).
        """
        x = feats[0]
        if self.out_channels is not None and \
                x.size(1) != self.out_channels * self.bins:
            raise ValueError(
                f'PSRoIExtractor expects out_channels * k * k = '
                f'{self.out_channels} * {self.bins} = '
                f'{self.out_channels * self.bins} input channels, got '
                f'{x.size(1)}')
        return self.pool(x, rois, roi_scale_factor=roi_scale_factor)

    def pool(self,
             maps: Tensor,
             rois: Tensor,
             offset: Optional[Tensor] = None,
             roi_scale_factor: Optional[float] = None) -> Tensor:
        """The op on any maps with k * k channels per output channel (no
        check against ``out_channels``), with the offsets of a
        :class:`~rfcn_mm.ops.DeformPSRoIPool` layer when given; float32
        for float16/bfloat16 maps, as :meth:`forward`."""
        if maps.dtype in (torch.float16, torch.bfloat16):
            maps = maps.float()
        rois = rois.type_as(maps)
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        layer = self.roi_layers[0]
        if offset is None:
            return layer(maps, rois)
        if not isinstance(layer, ops.DeformPSRoIPool):
            raise TypeError('PSRoIExtractor: offsets need '
                            "roi_layer=dict(type='DeformPSRoIPool', ...), got "
                            f'{type(layer).__name__}')
        return layer(maps, rois, offset.type_as(maps))
