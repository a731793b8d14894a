from typing import List, Tuple

from mmcv.ops import DeformConv2dPack
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType
from torch import Tensor

from ..task_modules import RFCNOHEMSampler


@MODELS.register_module()
class PSRoIHead(StandardRoIHead):
    """R-FCN RoI head: shared head on the whole map, position-sensitive
    score maps, PS RoI pooling and voting.

    Compared with :class:`StandardRoIHead` only the order changes: the
    optional ``shared_head`` (R-FCN's conv5, stride 1 and dilation 2) and
    the bbox head's score-map convs run once per image on the whole feature
    map, and the RoIs are pooled from the score maps afterwards. The
    ``_bbox_forward(x, rois) -> dict(cls_score, bbox_pred, bbox_feats)``
    contract is kept, so mmdet's samplers (including its OHEMSampler) work
    with this head. With :class:`RFCNOHEMSampler`, mining reuses the
    forward pass of the loss.
    """

    def init_bbox_head(self, bbox_roi_extractor: ConfigType,
                       bbox_head: ConfigType) -> None:
        super().init_bbox_head(bbox_roi_extractor, bbox_head)
        extractor, head = self.bbox_roi_extractor, self.bbox_head
        if extractor.out_channels is None:
            extractor.out_channels = head.pooled_channels
        elif extractor.out_channels != head.pooled_channels:
            raise ValueError(
                'bbox_roi_extractor.out_channels '
                f'({extractor.out_channels}) must equal the bbox head\'s '
                f'pooled channels num_classes + 1 + box deltas '
                f'({head.pooled_channels}); leave it None to derive it')
        if extractor.bins != head.roi_feat_area:
            raise ValueError(
                f'bbox_roi_extractor.roi_layer.output_size ({extractor.bins} '
                f'bins) and bbox_head.roi_feat_size ({head.roi_feat_area} '
                'bins) must agree')

    def init_weights(self) -> None:
        """mmengine's initialisation, then every deformable convolution
        of the RoI head (deformable conv5, mmcv's ``DeformConv2dPack``)
        back to zero offsets: mmdet's ResLayer initialises every Conv2d
        with Kaiming when it has no pretrained weights, its offset convs
        included, which would start training from random offsets."""
        super().init_weights()
        for module in self.modules():
            if isinstance(module, DeformConv2dPack):
                module.init_offset()

    def score_maps(self, x: Tuple[Tensor]) -> Tensor:
        """Shared head (conv5) and the score-map convs on the whole map.

        Args:
            x (tuple[Tensor]): Single-level features of shape (N, C, H, W).

        Returns:
            Tensor: (N, pooled_channels, H', W'), see
            :meth:`PSBBoxHead.score_maps`.
        """
        feats = x[0]
        if self.with_shared_head:
            feats = self.shared_head(feats)
        return self.bbox_head.score_maps(feats)

    def _bbox_forward(self, x: Tuple[Tensor], rois: Tensor) -> dict:
        """Score maps on the whole map, then :meth:`pool_and_vote`.

        Args:
            x (tuple[Tensor]): Single-level features of shape (N, C, H, W).
            rois (Tensor): RoIs of shape (R, 5).

        Returns:
            dict: See :meth:`pool_and_vote`.
        """
        return self.pool_and_vote(self.score_maps(x), rois)

    def pool_and_vote(self, maps: Tensor, rois: Tensor) -> dict:
        """PS RoI pooling of whole-image score maps, then voting.

        Args:
            maps (Tensor): Score maps (N, pooled_channels, H', W') from
                :meth:`score_maps`.
            rois (Tensor): RoIs of shape (R, 5).

        Returns:
            dict: ``cls_score`` (R, C+1), ``bbox_pred`` (R, 4) or (R, 4C),
            ``bbox_feats``, the pooled maps (R, pooled_channels, k, k), and
            ``score_maps``, the whole-image maps they were pooled from.
        """
        pooled = self.bbox_head.pool(self.bbox_roi_extractor, maps, rois)
        cls_score, bbox_pred = self.bbox_head(pooled)
        return dict(
            cls_score=cls_score,
            bbox_pred=bbox_pred,
            bbox_feats=pooled,
            score_maps=maps)

    def bbox_loss(self, x: Tuple[Tensor],
                  sampling_results: List[SamplingResult]) -> dict:
        """Box head loss; mines hard examples from the same forward pass when
        the sampler is :class:`RFCNOHEMSampler`."""
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois)
        miner = self.bbox_sampler if isinstance(self.bbox_sampler,
                                                RFCNOHEMSampler) else None
        bbox_loss_and_target = self.bbox_head.loss_and_target(
            cls_score=bbox_results['cls_score'],
            bbox_pred=bbox_results['bbox_pred'],
            rois=rois,
            sampling_results=sampling_results,
            rcnn_train_cfg=self.train_cfg,
            hard_example_miner=miner)
        bbox_results.update(loss_bbox=bbox_loss_and_target['loss_bbox'])
        return bbox_results
