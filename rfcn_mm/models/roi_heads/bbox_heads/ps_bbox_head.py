from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.losses import accuracy
from mmdet.models.roi_heads.bbox_heads import BBoxHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from torch import Tensor


@MODELS.register_module()
class PSBBoxHead(BBoxHead):
    """R-FCN box head: position-sensitive score maps and average voting.

    The head owns every learnable layer of R-FCN after the backbone: a 1x1
    conv (in_channels -> mid_channels, ReLU) and two sibling 1x1 convs that
    give k*k*(C+1) class score maps and k*k*4 box maps (k*k*4*C when
    class-specific). :meth:`score_maps` runs them once per image on the
    whole map; after PS RoI pooling, :meth:`forward` votes (averages the
    k*k bins) into (C+1) class scores and 4 (or 4C) box deltas. No learnable
    layer follows the pooling, so the per-RoI cost is negligible.

    Args:
        roi_feat_size (int): k, the bin grid. Defaults to 7.
        in_channels (int): Channels of the feature map (conv5: 2048).
            Defaults to 2048.
        mid_channels (int): Channels after the 1x1 reduce conv. Defaults to
            1024.
        num_classes (int): Foreground classes C. Defaults to 20.
        reg_class_agnostic (bool): 4*k*k box maps shared by all classes
            (the paper) instead of 4*k*k*C. Defaults to True.
        conv_cfg, norm_cfg (dict, optional): Of the reduce conv. Default to
            None.
        init_cfg (dict | list[dict], optional): Defaults to normal init with
            std 0.01 for the reduce and class convs and 0.001 for the box
            conv.
        **kwargs: The rest of :class:`BBoxHead`'s arguments (bbox_coder,
            loss_cls, loss_bbox, ...).

    Note:
        mmdet puts background last (label ``num_classes``), so with the
        class-major layout of the PS op the background maps are the last
        k*k channels of the class score maps.
    """

    def __init__(self,
                 roi_feat_size: int = 7,
                 in_channels: int = 2048,
                 mid_channels: int = 1024,
                 num_classes: int = 20,
                 reg_class_agnostic: bool = True,
                 conv_cfg: Optional[ConfigType] = None,
                 norm_cfg: Optional[ConfigType] = None,
                 init_cfg: OptMultiConfig = [
                     dict(type='Normal', std=0.01, layer='Conv2d'),
                     dict(type='Normal', std=0.001,
                          override=dict(name='conv_reg'))
                 ],
                 **kwargs) -> None:
        if kwargs.get('with_avg_pool'):
            raise ValueError('PSBBoxHead votes by averaging its bins; '
                             'with_avg_pool is not an option')
        super().__init__(
            roi_feat_size=roi_feat_size,
            in_channels=in_channels,
            num_classes=num_classes,
            reg_class_agnostic=reg_class_agnostic,
            init_cfg=init_cfg,
            **kwargs)
        # BBoxHead builds fc predictors on pooled features; R-FCN has no
        # layer after pooling: its predictors are the score-map convs.
        del self.fc_cls, self.fc_reg
        self.mid_channels = mid_channels
        bins = self.roi_feat_area
        box_dim = self.bbox_coder.encode_size
        self.cls_channels = num_classes + 1
        self.reg_channels = box_dim * (1 if reg_class_agnostic else
                                       num_classes)
        self.reduce = ConvModule(
            in_channels,
            mid_channels,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=dict(type='ReLU'))
        self.conv_cls = nn.Conv2d(mid_channels, bins * self.cls_channels, 1)
        self.conv_reg = nn.Conv2d(mid_channels, bins * self.reg_channels, 1)

    @property
    def pooled_channels(self) -> int:
        """Channels per RoI after PS pooling: (C+1) scores + box deltas."""
        return self.cls_channels + self.reg_channels

    def score_maps(self, x: Tensor) -> Tensor:
        """Position-sensitive maps of a batch of feature maps.

        Args:
            x (Tensor): Features of shape (N, in_channels, H, W).

        Returns:
            Tensor: (N, k*k*(C+1) + k*k*4, H, W): class maps then box maps,
            each class-major, so that one PS pooling call serves both.
        """
        x = self.reduce(x)
        return torch.cat([self.conv_cls(x), self.conv_reg(x)], dim=1)

    def pool(self, extractor, maps: Tensor, rois: Tensor) -> Tensor:
        """PS RoI pooling of :meth:`score_maps`' output with the RoI
        extractor (one op call for class and box maps).

        Returns:
            Tensor: (R, pooled_channels, k, k).
        """
        return extractor((maps, ), rois)

    def forward(self, pooled: Tensor) -> Tuple[Tensor, Tensor]:
        """Vote: average each RoI's k*k bins.

        Args:
            pooled (Tensor): PS-pooled maps of shape
                (R, pooled_channels, k, k).

        Returns:
            tuple[Tensor, Tensor]: cls_score (R, C+1) and bbox_pred
            (R, 4) or (R, 4C).
        """
        cls_score = pooled[:, :self.cls_channels].mean(dim=(2, 3))
        bbox_pred = pooled[:, self.cls_channels:].mean(dim=(2, 3))
        return cls_score, bbox_pred

    def per_roi_losses(self, cls_score: Tensor, bbox_pred: Tensor,
                       labels: Tensor, label_weights: Tensor,
                       bbox_targets: Tensor,
                       bbox_weights: Tensor) -> Tuple[Tensor, Tensor]:
        """Unreduced classification and box losses of every RoI.

        Returns:
            tuple[Tensor, Tensor]: (R,) cross-entropy and (R,) smooth L1
            (summed over coordinates, 0 for background RoIs), loss weights
            applied.
        """
        loss_cls = self.loss_cls(
            cls_score, labels, label_weights, reduction_override='none')
        loss_bbox = loss_cls.new_zeros(cls_score.size(0))
        pos = (labels >= 0) & (labels < self.num_classes)
        if pos.any():
            if self.reg_class_agnostic:
                pos_pred = bbox_pred[pos]
            else:
                pos_pred = bbox_pred.view(bbox_pred.size(0), self.num_classes,
                                          -1)[pos, labels[pos]]
            per_coord = self.loss_bbox(
                pos_pred,
                bbox_targets[pos],
                bbox_weights[pos],
                reduction_override='none')
            loss_bbox = loss_bbox.index_put((pos.nonzero()[:, 0], ),
                                            per_coord.sum(dim=1).to(
                                                loss_bbox.dtype))
        return loss_cls, loss_bbox

    def loss_and_target(self,
                        cls_score: Tensor,
                        bbox_pred: Tensor,
                        rois: Tensor,
                        sampling_results: List[SamplingResult],
                        rcnn_train_cfg: ConfigDict,
                        concat: bool = True,
                        reduction_override: Optional[str] = None,
                        hard_example_miner=None) -> dict:
        """:meth:`BBoxHead.loss_and_target`, plus online hard example
        mining as R-FCN does it when ``hard_example_miner`` is given.

        With a miner (:class:`RFCNOHEMSampler`), the loss of every RoI
        (cross-entropy + smooth L1) is computed from the same forward pass,
        the miner keeps the hardest RoIs of each image, and both losses are
        averaged over the kept RoIs only, so the others get no gradient.
        ``acc`` is then measured on the hard examples only, and looks low
        for that reason.
        """
        if hard_example_miner is None:
            return super().loss_and_target(cls_score, bbox_pred, rois,
                                           sampling_results, rcnn_train_cfg,
                                           concat, reduction_override)
        targets = self.get_targets(sampling_results, rcnn_train_cfg)
        labels = targets[0]
        loss_cls, loss_bbox = self.per_roi_losses(cls_score, bbox_pred,
                                                  *targets)
        keep = hard_example_miner.select(
            (loss_cls + loss_bbox).detach(), rois)
        losses = dict(
            loss_cls=hard_example_miner.mean_over_kept(loss_cls, keep),
            loss_bbox=hard_example_miner.mean_over_kept(loss_bbox, keep),
            acc=accuracy(cls_score[keep], labels[keep]))
        return dict(loss_bbox=losses, bbox_targets=targets)
