"""py-R-FCN's Caffe models (``.caffemodel``) as rfcn_mm weights.

Layers are read by name (``rfcn_end2end/test_agnostic.prototxt``'s):
``Convolution`` layers give a weight and, where they have one, a bias;
``BatchNorm`` layers their statistics, divided by the stored scale factor;
``Scale`` layers the BatchNorm's gamma and beta (Caffe splits the two, mmdet
has one module; eps 1e-5 in both). Layers without blobs (ReLU, pooling,
PS RoI pooling, softmax ...) have nothing to convert. The head layouts are
turned into rfcn_mm's (:mod:`.head_layouts`); py-R-FCN's snapshots already
hold the box layer with the delta normalisation folded in.
"""
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .caffemodel import CaffeLayer
from .head_layouts import (agnostic_foreground, background_last,
                           caffe_batch_norm, softmax_to_sigmoid)
from .reference_layers import UnknownLayerError, conv_key, norm_key

# blocks of res4 -> ResNet depth (res2, res3, res5 have 3, 4 and 3 in both)
_DEPTHS = {6: 50, 23: 101}


def _blob_count(layer: CaffeLayer, counts: Sequence[int]) -> None:
    if len(layer.blobs) not in counts:
        raise UnknownLayerError(
            f'layer {layer.name} ({layer.type}) has {len(layer.blobs)} '
            f'blobs; expected {" or ".join(map(str, counts))}')


def convert_layers(layers: List[CaffeLayer],
                   bins: int = 49) -> Tuple[Dict[str, np.ndarray],
                                            List[str]]:
    """rfcn_mm weights from the layers of a py-R-FCN model.

    Args:
        layers (list[CaffeLayer]): :func:`rfcn_mm.converters.read_caffemodel`.
        bins (int): k*k of the score maps. Defaults to 49.

    Returns:
        tuple: The state dict (rfcn_mm keys to float32 arrays) and a report.

    Raises:
        UnknownLayerError: a layer with weights that is none of R-FCN's, or
            with the wrong number of blobs, named.
    """
    out: Dict[str, np.ndarray] = OrderedDict()
    counts = dict(conv=0, bn=0, scale=0, skipped=0)
    factors = set()
    for layer in layers:
        blobs = [np.asarray(b, dtype=np.float32) for b in layer.blobs]
        if not blobs:
            counts['skipped'] += 1
            continue
        if layer.type == 'Convolution' and conv_key(layer.name):
            _blob_count(layer, (1, 2))
            key = conv_key(layer.name)
            out[key + '.weight'] = blobs[0]
            if len(blobs) == 2:
                out[key + '.bias'] = blobs[1].reshape(-1)
            counts['conv'] += 1
        elif layer.type == 'BatchNorm' and norm_key(layer.name):
            _blob_count(layer, (3, ))
            key = norm_key(layer.name)
            mean, var = caffe_batch_norm(blobs[0].reshape(-1),
                                         blobs[1].reshape(-1), blobs[2])
            out[key + '.running_mean'], out[key + '.running_var'] = mean, var
            factors.add(float(blobs[2].reshape(-1)[0]))
            counts['bn'] += 1
        elif layer.type == 'Scale' and norm_key(layer.name):
            _blob_count(layer, (2, ))
            key = norm_key(layer.name)
            out[key + '.weight'] = blobs[0].reshape(-1)
            out[key + '.bias'] = blobs[1].reshape(-1)
            counts['scale'] += 1
        else:
            raise UnknownLayerError(
                f'layer {layer.name} ({layer.type}, {len(blobs)} blobs) has '
                'no place in R-FCN')
    report = [
        f'{counts["conv"]} convolutions, {counts["bn"]} BatchNorms, '
        f'{counts["scale"]} Scales; {counts["skipped"]} layers without '
        'weights'
    ]
    if factors:
        report.append('BatchNorm scale factors: ' +
                      ', '.join(f'{f:g}' for f in sorted(factors)))
    heads = [('roi_head.bbox_head.conv_cls',
              lambda w, b: background_last(w, b, bins),
              'rfcn_cls: background block moved last'),
             ('roi_head.bbox_head.conv_reg',
              lambda w, b: agnostic_foreground(w, b, bins),
              'rfcn_bbox: foreground half of the (bg, fg) box maps'),
             ('rpn_head.rpn_cls', softmax_to_sigmoid,
              'rpn_cls_score: fg - bg (softmax as sigmoid)')]
    for key, fn, what in heads:
        if key + '.weight' in out and key + '.bias' in out:
            out[key + '.weight'], out[key + '.bias'] = fn(
                out[key + '.weight'], out[key + '.bias'])
            report.append(what)
    return out, report


def resnet_depth(layers: List[CaffeLayer]) -> int:
    """The ResNet depth of a py-R-FCN model from its res4 block names
    (``res4a`` ... ``res4f``: 50; ``res4a``, ``res4b1`` ... ``res4b22``:
    101).

    Raises:
        UnknownLayerError: res4 has another number of blocks.
    """
    blocks = {
        layer.name.split('_')[0]
        for layer in layers if layer.name.startswith('res4')
    }
    if len(blocks) not in _DEPTHS:
        raise UnknownLayerError(
            f'res4 has {len(blocks)} blocks; py-R-FCN\'s ResNet-50 has 6 '
            'and ResNet-101 23')
    return _DEPTHS[len(blocks)]
