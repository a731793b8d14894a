"""PSRoIHead."""
import pytest
import torch
from helpers.tiny_rfcn import tiny_model_cfg
from mmdet.registry import MODELS

from rfcn_mm.models import PSRoIExtractor


def test_extractor_channel_mismatch_is_reported():
    cfg = tiny_model_cfg()
    cfg.roi_head.bbox_roi_extractor.out_channels = 21
    with pytest.raises(ValueError, match='out_channels'):
        MODELS.build(cfg)
    extractor = PSRoIExtractor(dict(type='PSRoIPool', output_size=3), 5)
    with pytest.raises(
            ValueError, match=r'5 \* 9 = 45 input channels, '
            'got 40'):
        extractor((torch.zeros(1, 40, 4, 4), ), torch.zeros(1, 5))
    with pytest.raises(KeyError, match='unknown roi_layer type "RoIAlign"'):
        PSRoIExtractor(dict(type='RoIAlign', output_size=3), 5)
