"""The released R-FCN models' layer names, and where each goes in rfcn_mm.

py-R-FCN's Caffe models and Deformable-ConvNets' MXNet models name their
layers alike (MSRA's ResNet names plus the R-FCN head): ``conv1`` /
``bn_conv1``; ``res{stage}{block}_branch{1,2a,2b,2c}`` with BatchNorm
``bn...`` (and Caffe's Scale ``scale...``), where ``block`` is ``a``,
``b``, ``c`` ... or ``a``, ``b1`` ... ``b22`` (ResNet-101's res3 and res4);
``rpn_conv/3x3`` (MXNet: ``rpn_conv_3x3``), ``rpn_cls_score``,
``rpn_bbox_pred``, ``conv_new_1``, ``rfcn_cls``, ``rfcn_bbox``; Deformable
R-FCN (``rfcn_dcn_coco``) adds ``res5{a,b,c}_branch2b_offset`` (the offset
convs of its deformable res5 3x3 convs, mmcv ``DCN``'s ``conv_offset``) and
``rfcn_cls_offset_t``/``rfcn_bbox_offset_t`` (the head's offset maps). In
rfcn_mm,
res2-res4 are the backbone's ``layer1``-``layer3`` and res5 the RoI head's
``shared_head.layer4`` (mmdet's ResNet layout: ``conv1..3``/``bn1..3``,
``downsample.0``/``downsample.1``).
"""
import re
from typing import Optional, Tuple


class UnknownLayerError(ValueError):
    """A layer or array of a released model with no place in R-FCN."""


_BLOCK = re.compile(r'^([2-5])([a-z])(\d*)$')
_RES = re.compile(r'^res([2-5][a-z]\d*)_branch(1|2a|2b|2c)(_offset)?$')
_BN = re.compile(r'^(?:bn|scale)([2-5][a-z]\d*)_branch(1|2a|2b|2c)$')

HEAD_LAYERS = {
    'rpn_conv/3x3': 'rpn_head.rpn_conv',
    'rpn_conv_3x3': 'rpn_head.rpn_conv',
    'rpn_cls_score': 'rpn_head.rpn_cls',
    'rpn_bbox_pred': 'rpn_head.rpn_reg',
    'conv_new_1': 'roi_head.bbox_head.reduce.conv',
    'rfcn_cls': 'roi_head.bbox_head.conv_cls',
    'rfcn_bbox': 'roi_head.bbox_head.conv_reg',
    'rfcn_cls_offset_t': 'roi_head.bbox_head.conv_cls_offset',
    'rfcn_bbox_offset_t': 'roi_head.bbox_head.conv_reg_offset',
}


def block_index(block: str) -> int:
    """``a`` -> 0, ``b`` -> 1, ``c`` -> 2 ...; ``b1`` -> 1, ``b22`` -> 22
    (MSRA's names for long stages)."""
    m = re.match(r'^([a-z])(\d*)$', block)
    if m is None:
        raise ValueError(f'not a ResNet block name: {block!r}')
    letter, number = m.groups()
    if number:
        if letter != 'b':
            raise ValueError(f'not a ResNet block name: {block!r}')
        return int(number)
    return ord(letter) - ord('a')


def _stage_prefix(stage: int) -> str:
    return (f'backbone.layer{stage - 1}' if stage < 5 else
            'roi_head.shared_head.layer4')


def _block_module(block_name: str, branch: str) -> str:
    m = _BLOCK.match(block_name)
    if m is None:
        raise ValueError(f'not a ResNet block name: {block_name!r}')
    stage, letter, number = int(m.group(1)), m.group(2), m.group(3)
    index = block_index(letter + number)
    prefix = f'{_stage_prefix(stage)}.{index}'
    if branch == '1':
        if index != 0:
            raise ValueError(f'res{block_name}_branch1: only the first '
                             'block of a stage has a projection shortcut')
        return prefix + '.downsample'
    return prefix + '.conv' + '123'['abc'.index(branch[1])]


def conv_key(layer: str) -> Optional[str]:
    """The rfcn_mm module (without ``.weight``) of a convolution layer, or
    None for a name that is not one of the reference's convolutions."""
    if layer == 'conv1':
        return 'backbone.conv1'
    if layer in HEAD_LAYERS:
        return HEAD_LAYERS[layer]
    m = _RES.match(layer)
    if m is None:
        return None
    module = _block_module(m.group(1), m.group(2))
    if m.group(3):  # a deformable conv's offset conv
        if m.group(2) != '2b':
            raise UnknownLayerError(
                f'{layer}: only the 3x3 convs (branch2b) are deformable')
        return module + '.conv_offset'
    return module + '.0' if module.endswith('downsample') else module


def norm_key(layer: str) -> Optional[str]:
    """The rfcn_mm BatchNorm module of a ``bn...`` (or Caffe ``scale...``)
    layer, or None."""
    if layer in ('bn_conv1', 'scale_conv1'):
        return 'backbone.bn1'
    m = _BN.match(layer)
    if m is None:
        return None
    module = _block_module(m.group(1), m.group(2))
    if module.endswith('downsample'):
        return module + '.1'
    return module.replace('.conv', '.bn')


def split_layer(name: str) -> Tuple[str, str]:
    """MXNet parameter name -> (layer, parameter): ``res2a_branch2a_weight``
    -> (``res2a_branch2a``, ``weight``); ``bn_conv1_moving_mean`` ->
    (``bn_conv1``, ``moving_mean``)."""
    for suffix in ('moving_mean', 'moving_var', 'weight', 'bias', 'gamma',
                   'beta'):
        if name.endswith('_' + suffix):
            return name[:-len(suffix) - 1], suffix
    raise ValueError(f'{name}: not a parameter name (layer_weight, '
                     'layer_bias, layer_gamma ...)')
