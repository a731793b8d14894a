"""py-R-FCN's ResNet-101 R-FCN test network (``rfcn_end2end/
test_agnostic.prototxt``) in NumPy, at reduced widths, as the oracle for
the Caffe converter where no Caffe runtime exists.

:func:`make_layers` gives every weighted layer of the prototxt, with its
real name and Caffe's blobs (BatchNorm: mean and variance multiplied by a
scale factor, then the factor; Scale: gamma, beta), random, at ``width /
64`` of the real widths and the real block counts. :func:`forward` runs the
network as Caffe does, layer by layer, in float64: convolutions, BatchNorm
on its stored statistics (eps 1e-5), Scale, ReLU, ``pool1`` (3x3, stride 2,
no padding, ceil mode, windows cut at the border), the RPN's two-way
softmax over its (N, 2, A*H, W) reshape, the proposal layer, PSROIPooling
(rounded corners, +1 end, 0.1 minimum size, floor/ceil bins, average),
global average voting and the softmax.
"""
import math

import numpy as np

from .py_faster_rcnn import proposal_layer

BLOCKS = {2: ['a', 'b', 'c'], 3: ['a', 'b1', 'b2', 'b3'],
          4: ['a'] + [f'b{i}' for i in range(1, 23)], 5: ['a', 'b', 'c']}
PLANES = {2: 1, 3: 2, 4: 4, 5: 8}  # x width
STRIDES = {2: 1, 3: 2, 4: 2, 5: 1}
EPS = 1e-5


def make_layers(width, classes, anchors, rpn_channels, mid_channels, k,
                seed, gains, scale_factor=2.0):
    """{name: (type, blobs)} of every weighted layer, in network order."""
    rng = np.random.default_rng(seed)
    layers = {}

    def conv(name, out, inp, size, bias):
        fan_in = inp * size * size
        w = rng.normal(0, gains.get(name, 1.0) / math.sqrt(fan_in),
                       (out, inp, size, size))
        blobs = [w] + ([rng.normal(0, 0.1, out)] if bias else [])
        layers[name] = ('Convolution', [b.astype(np.float32) for b in blobs])

    def norm(tag, channels, small_gamma=False):
        mean = rng.normal(0, 0.2, channels)
        var = rng.uniform(0.5, 2.0, channels)
        layers[f'bn{tag}'] = ('BatchNorm', [
            (mean * scale_factor).astype(np.float32),
            (var * scale_factor).astype(np.float32),
            np.array([scale_factor], np.float32)
        ])
        gamma = rng.uniform(0.1, 0.3, channels) if small_gamma else \
            rng.uniform(0.5, 1.5, channels)
        layers[f'scale{tag}'] = ('Scale', [
            gamma.astype(np.float32),
            rng.normal(0, 0.1, channels).astype(np.float32)
        ])

    conv('conv1', width, 3, 7, False)
    norm('_conv1', width)
    inp = width
    for stage, blocks in BLOCKS.items():
        planes = PLANES[stage] * width
        for i, block in enumerate(blocks):
            tag = f'{stage}{block}'
            if i == 0:
                conv(f'res{tag}_branch1', 4 * planes, inp, 1, False)
                norm(f'{tag}_branch1', 4 * planes)
            conv(f'res{tag}_branch2a', planes, inp, 1, False)
            norm(f'{tag}_branch2a', planes)
            conv(f'res{tag}_branch2b', planes, planes, 3, False)
            norm(f'{tag}_branch2b', planes)
            conv(f'res{tag}_branch2c', 4 * planes, planes, 1, False)
            norm(f'{tag}_branch2c', 4 * planes, small_gamma=True)
            inp = 4 * planes
    conv('rpn_conv/3x3', rpn_channels, 16 * width, 3, True)
    conv('rpn_cls_score', 2 * anchors, rpn_channels, 1, True)
    conv('rpn_bbox_pred', 4 * anchors, rpn_channels, 1, True)
    conv('conv_new_1', mid_channels, 32 * width, 1, True)
    conv('rfcn_cls', classes * k * k, mid_channels, 1, True)
    conv('rfcn_bbox', 8 * k * k, mid_channels, 1, True)
    return layers


def _conv(x, blobs, stride=1, pad=0, dilation=1):
    w = blobs[0].astype(np.float64)
    channels, height, width = x.shape
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out_h = (height + 2 * pad - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * pad - dilation * (kw - 1) - 1) // stride + 1
    cols = np.empty((channels, kh, kw, out_h, out_w))
    for i in range(kh):
        for j in range(kw):
            r, c = i * dilation, j * dilation
            cols[:, i, j] = xp[:, r:r + stride * (out_h - 1) + 1:stride,
                               c:c + stride * (out_w - 1) + 1:stride]
    out = np.tensordot(w, cols, axes=([1, 2, 3], [0, 1, 2]))
    if len(blobs) > 1:
        out += blobs[1].astype(np.float64)[:, None, None]
    return out


def _bn_scale(x, layers, tag):
    mean, var, factor = (b.astype(np.float64) for b in layers[f'bn{tag}'][1])
    f = 0.0 if factor[0] == 0 else 1.0 / factor[0]
    gamma, beta = (b.astype(np.float64) for b in layers[f'scale{tag}'][1])
    std = np.sqrt(var * f + EPS)
    x = (x - (mean * f)[:, None, None]) / std[:, None, None]
    return x * gamma[:, None, None] + beta[:, None, None]


def _max_pool_ceil(x, size=3, stride=2):
    channels, height, width = x.shape
    out_h = int(math.ceil((height - size) / stride)) + 1
    out_w = int(math.ceil((width - size) / stride)) + 1
    out = np.empty((channels, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            hs, ws = i * stride, j * stride
            out[:, i, j] = x[:, hs:min(hs + size, height),
                             ws:min(ws + size, width)].max((1, 2))
    return out


def _psroi_pool(maps, rois, k, out_dim, scale):
    """Caffe R-FCN's PSROIPooling (C's round: half away from zero)."""
    _, height, width = maps.shape
    out = np.zeros((len(rois), out_dim, k, k))

    def rnd(v):
        return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)

    for r, roi in enumerate(rois):
        x1, y1 = rnd(roi[1]) * scale, rnd(roi[2]) * scale
        x2, y2 = (rnd(roi[3]) + 1) * scale, (rnd(roi[4]) + 1) * scale
        bw, bh = max(x2 - x1, 0.1) / k, max(y2 - y1, 0.1) / k
        for i in range(k):
            hs = min(max(math.floor(i * bh + y1), 0), height)
            he = min(max(math.ceil((i + 1) * bh + y1), 0), height)
            for j in range(k):
                ws = min(max(math.floor(j * bw + x1), 0), width)
                we = min(max(math.ceil((j + 1) * bw + x1), 0), width)
                if he <= hs or we <= ws:
                    continue
                chans = (np.arange(out_dim) * k + i) * k + j
                out[r, :, i, j] = maps[chans, hs:he, ws:we].mean((1, 2))
    return out


def _softmax(z, axis):
    z = z - z.max(axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis, keepdims=True)


def forward(layers, data, fixed_rois, k, anchors, min_size=16):
    """The network on ``data`` ((3, H, W), already minus the means, BGR).

    Returns:
        dict: ``conv5``, ``rpn_cls_prob`` (2A, h, w), ``rpn_bbox_pred``,
        ``rois`` (P, 5) and ``roi_scores`` of the proposal layer, and
        ``cls_prob``/``bbox_pred`` for those RoIs and ``fixed_cls_prob``/
        ``fixed_bbox_pred`` for ``fixed_rois``.
    """
    def blobs(name):
        return layers[name][1]

    relu = np.maximum
    x = relu(_bn_scale(_conv(data, blobs('conv1'), 2, 3), layers,
                       '_conv1'), 0)
    x = _max_pool_ceil(x)
    for stage, blocks in BLOCKS.items():
        for i, block in enumerate(blocks):
            tag = f'{stage}{block}'
            stride = STRIDES[stage] if i == 0 else 1
            dilation = 2 if stage == 5 else 1
            short = _bn_scale(_conv(x, blobs(f'res{tag}_branch1'), stride),
                              layers, f'{tag}_branch1') if i == 0 else x
            y = relu(_bn_scale(_conv(x, blobs(f'res{tag}_branch2a'), stride),
                               layers, f'{tag}_branch2a'), 0)
            y = relu(_bn_scale(_conv(y, blobs(f'res{tag}_branch2b'), 1,
                                     dilation, dilation),
                               layers, f'{tag}_branch2b'), 0)
            y = _bn_scale(_conv(y, blobs(f'res{tag}_branch2c')), layers,
                          f'{tag}_branch2c')
            x = relu(short + y, 0)
        if stage == 4:
            conv4 = x
    conv5 = x

    rpn = relu(_conv(conv4, blobs('rpn_conv/3x3'), 1, 1), 0)
    score = _conv(rpn, blobs('rpn_cls_score'))
    _, h, w = score.shape
    # Caffe's reshape to (2, A*h, w), softmax over the 2, reshape back
    prob = _softmax(score.reshape(2, anchors * h, w), 0).reshape(
        2 * anchors, h, w)
    deltas = _conv(rpn, blobs('rpn_bbox_pred'))
    boxes, scores = proposal_layer(prob[anchors:], deltas,
                                   (data.shape[1], data.shape[2], 1.0),
                                   min_size=min_size)
    rois = np.hstack([np.zeros((len(boxes), 1)), boxes])

    new = relu(_conv(conv5, blobs('conv_new_1')), 0)
    cls_maps = _conv(new, blobs('rfcn_cls'))
    box_maps = _conv(new, blobs('rfcn_bbox'))
    classes = cls_maps.shape[0] // (k * k)

    def head(r):
        cls = _psroi_pool(cls_maps, r, k, classes, 1 / 16).mean((2, 3))
        box = _psroi_pool(box_maps, r, k, 8, 1 / 16).mean((2, 3))
        return _softmax(cls, 1), box

    out = dict(conv5=conv5, rpn_cls_prob=prob, rpn_bbox_pred=deltas,
               rois=rois, roi_scores=scores)
    out['cls_prob'], out['bbox_pred'] = head(rois)
    out['fixed_cls_prob'], out['fixed_bbox_pred'] = head(fixed_rois)
    return out
