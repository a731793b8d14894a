import torch.nn as nn
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS


@MODELS.register_module()
class CaffePoolResNet(ResNet):
    """mmdet's :class:`ResNet` with the stem's max pooling of the MSRA
    Caffe ResNets (py-R-FCN's ``pool1``, and MXNet's with
    ``pooling_convention='full'`` in Deformable-ConvNets): 3x3, stride 2,
    no padding, output size rounded up (``ceil_mode``), for their converted
    weights. mmdet pads by one instead: the output has the same size for
    even inputs, but every window sits one pixel further up and left.

    Takes :class:`ResNet`'s arguments (``style='caffe'`` puts the stride on
    the 1x1 convs, as those models do).
    """

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        super()._make_stem_layer(in_channels, stem_channels)
        self.maxpool = nn.MaxPool2d(
            kernel_size=3, stride=2, padding=0, ceil_mode=True)
