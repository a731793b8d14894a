"""Deformable-ConvNets' R-FCN checkpoints (MXNet ``.params``) as rfcn_mm
weights.

The checkpoints name their arrays ``arg:<layer>_<weight|bias|gamma|beta>``
and ``aux:<layer>_moving_<mean|var>`` (BatchNorm with ``fix_gamma=False``,
eps 1e-5, as mmdet's). ``do_checkpoint`` also saves ``rfcn_bbox_*_test``:
the box layer with the delta normalisation (stds 0.1, 0.1, 0.2, 0.2)
folded in, which its test code loads in place of ``rfcn_bbox_*``; it is
preferred here for the same reason. The head layouts are turned into
rfcn_mm's (:mod:`.head_layouts`). Deformable R-FCN's arrays (``rfcn_dcn_
coco``) are read too: the deformable res5 convs keep their weights (mmcv's
``DCN`` orders offsets as MXNet's ``DeformableConvolution``: (y, x) per
kernel point, group-major), and the class offset maps, one (x, y) field
of k*k bins per class, move their background field last as the score
maps do.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import numpy as np

from .head_layouts import (agnostic_foreground, background_last,
                           softmax_to_sigmoid)
from .reference_layers import (UnknownLayerError, conv_key, norm_key,
                               split_layer)

NORM_PARAMS = {
    'gamma': 'weight',
    'beta': 'bias',
    'moving_mean': 'running_mean',
    'moving_var': 'running_var'
}


def convert_params(params: Dict[str, np.ndarray],
                   bins: int = 49) -> Tuple[Dict[str, np.ndarray],
                                            List[str]]:
    """rfcn_mm weights from a Deformable-ConvNets R-FCN checkpoint.

    Args:
        params (dict): ``arg:``/``aux:`` names to arrays
            (:func:`rfcn_mm.converters.read_params`).
        bins (int): k*k of the score maps. Defaults to 49.

    Returns:
        tuple: The state dict (rfcn_mm keys to float32 arrays) and a report
        (lines saying what was mapped).

    Raises:
        UnknownLayerError: an array that is none of R-FCN's layers, named.
    """
    named = {}
    for name, value in params.items():
        if not name.startswith(('arg:', 'aux:')):
            raise UnknownLayerError(
                f'{name}: Deformable-ConvNets checkpoints name their arrays '
                'arg:<parameter> or aux:<statistic>')
        named[name[4:]] = value
    report = []
    for param in ('weight', 'bias'):
        test = f'rfcn_bbox_{param}_test'
        if test in named:
            named[f'rfcn_bbox_{param}'] = named.pop(test)
            report.append(f'rfcn_bbox_{param}: the _test copy (box-delta '
                          'normalisation folded in)')
    out: Dict[str, np.ndarray] = OrderedDict()
    convs, norms = set(), set()
    for name in sorted(named):
        value = np.asarray(named[name], dtype=np.float32)
        layer, param = split_layer(name)
        conv, norm = conv_key(layer), norm_key(layer)
        if conv is not None and param in ('weight', 'bias'):
            out[f'{conv}.{param}'] = value
            convs.add(layer)
        elif norm is not None and param in NORM_PARAMS:
            out[f'{norm}.{NORM_PARAMS[param]}'] = value
            norms.add(layer)
        else:
            raise UnknownLayerError(
                f'{name}: no R-FCN layer of that name (layer {layer!r}, '
                f'parameter {param!r})')
    heads = {
        'roi_head.bbox_head.conv_cls':
        (lambda w, b: background_last(w, b, bins),
         'rfcn_cls: background block moved last'),
        'roi_head.bbox_head.conv_reg':
        (lambda w, b: agnostic_foreground(w, b, bins),
         'rfcn_bbox: foreground half of the (bg, fg) box maps'),
        'rpn_head.rpn_cls': (softmax_to_sigmoid,
                             'rpn_cls_score: fg - bg (softmax as sigmoid)'),
        'roi_head.bbox_head.conv_cls_offset':
        (lambda w, b: background_last(w, b, 2 * bins),
         'rfcn_cls_offset_t: background offset field moved last'),
    }
    for key, (fn, what) in heads.items():
        if f'{key}.weight' in out and f'{key}.bias' in out:
            out[f'{key}.weight'], out[f'{key}.bias'] = fn(
                out[f'{key}.weight'], out[f'{key}.bias'])
            report.append(what)
    deformable = sorted(c for c in convs if c.endswith(('_offset', '_t')))
    report.insert(0, f'{len(convs)} convolutions, {len(norms)} BatchNorms '
                  f'mapped from {len(params)} arrays')
    if deformable:
        report.insert(1, f'Deformable R-FCN: {len(deformable)} offset convs '
                      f'({", ".join(deformable)})')
    return out, report


def is_deformable(params: Dict[str, np.ndarray]) -> bool:
    """Whether a checkpoint is Deformable R-FCN's (it has offset convs)."""
    return any(
        re.search(r'_offset(_t)?_(weight|bias)$', name) for name in params)
