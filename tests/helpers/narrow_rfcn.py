"""A released model's legacy config built at reduced widths (the real
block counts), for network-level oracle tests of the converters."""
from mmdet.models.backbones.resnet import Bottleneck
from mmdet.models.layers import ResLayer
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope


def narrow_model(config, width, num_classes, rpn_channels, mid_channels):
    """``config``'s model with ResNet widths ``width / 64`` of the real
    ones, ``rpn_channels`` in the RPN conv, ``mid_channels`` in the head's
    reduce conv and ``num_classes`` foreground classes, in eval mode."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.base_channels = width
    cfg.model.rpn_head.update(in_channels=16 * width,
                              feat_channels=rpn_channels)
    cfg.model.roi_head.bbox_head.update(
        in_channels=32 * width, mid_channels=mid_channels,
        num_classes=num_classes)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    head = cfg.model.roi_head.shared_head
    # mmdet's shared ResLayer has the real widths built in: res5 from
    # mmdet's own pieces at these widths, with the same module names
    model.roi_head.shared_head.layer4 = ResLayer(
        Bottleneck, 16 * width, 8 * width, 3, stride=1, dilation=2,
        style='caffe', norm_cfg=head.norm_cfg, dcn=head.get('dcn'))
    return model.eval()
