"""CaffePoolResNet: the stem pools as Caffe's ``pool1`` (3x3, stride 2, no
pad, sizes rounded up), checked against the pooling written out window by
window, and loads mmdet ResNet's weights unchanged."""
import math

import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope


def _caffe_max_pool(x):
    """Caffe's PoolingLayer MAX, kernel 3, stride 2, pad 0: output size
    ceil((H - 3) / 2) + 1, windows clipped to the input."""
    n, c, h, w = x.shape
    oh, ow = math.ceil((h - 3) / 2) + 1, math.ceil((w - 3) / 2) + 1
    out = x.new_empty(n, c, oh, ow)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, 2 * i:min(2 * i + 3, h),
                                2 * j:min(2 * j + 3, w)].amax((2, 3))
    return out


def test_the_stem_pools_as_caffe():
    init_default_scope('mmdet')
    cfg = dict(depth=18, num_stages=1, strides=(1, ), dilations=(1, ),
               out_indices=(0, ), style='caffe')
    net = MODELS.build(dict(type='CaffePoolResNet', **cfg))
    plain = MODELS.build(dict(type='ResNet', **cfg))
    plain.load_state_dict(net.state_dict())  # the same parameters
    for h, w in [(37, 50), (38, 51)]:  # odd and even stem outputs
        x = torch.randn(1, 64, h, w)
        torch.testing.assert_close(net.maxpool(x), _caffe_max_pool(x))
    x = torch.randn(1, 64, 38, 50)
    assert not torch.equal(net.maxpool(x), plain.maxpool(x))
