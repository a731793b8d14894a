"""py-R-FCN's Caffe layers to rfcn_mm, from files written in Caffe's wire
format with the real layer names: every weight of ResNet-101 R-FCN lands
on the legacy VOC config's model; BatchNorm statistics are divided by a
scale factor other than 1 and Scale gives gamma/beta; V1 layers and
unpacked floats read the same; swapping two classes' score-map blocks in
the file swaps exactly those classes in the converted head; layers
without weights are skipped and unknown ones refused by name."""
import os.path as osp

import numpy as np
import pytest
from helpers.caffe_wire import layer, layer_v1
from helpers.tool_runs import run_tool_here
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rfcn_mm.converters import read_caffemodel
from rfcn_mm.converters.py_rfcn import convert_layers, resnet_depth
from rfcn_mm.converters.reference_layers import UnknownLayerError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_pyrfcn_voc0712.py')
BLOCKS = {2: ['a', 'b', 'c'], 3: ['a', 'b1', 'b2', 'b3'],
          4: ['a'] + [f'b{i}' for i in range(1, 23)], 5: ['a', 'b', 'c']}
BLOCKS_R50 = {2: ['a', 'b', 'c'], 3: ['a', 'b', 'c', 'd'],
              4: ['a', 'b', 'c', 'd', 'e', 'f'], 5: ['a', 'b', 'c']}
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'pyrfcn_caffe_to_mmdet.py')


def net_layers(bins=49, classes=21, anchors=9, blocks=BLOCKS):
    """(name, type, blobs) of test_agnostic.prototxt's weighted layers,
    with tiny blobs except the heads, plus layers without weights
    (``blocks``: ResNet-101's or ResNet-50's)."""
    one = np.ones(2, np.float32)
    out = [('data', 'Input', []), ('conv1', 'Convolution', [one]),
           ('bn_conv1', 'BatchNorm', [one, one, np.array([1.])]),
           ('scale_conv1', 'Scale', [one, one]), ('pool1', 'Pooling', [])]
    for stage, names in blocks.items():
        for block in names:
            for br in ['2a', '2b', '2c'] + (['1'] if block == 'a' else []):
                tag = f'{stage}{block}_branch{br}'
                out += [(f'res{tag}', 'Convolution', [one]),
                        (f'bn{tag}', 'BatchNorm',
                         [one, one, np.array([1.])]),
                        (f'scale{tag}', 'Scale', [one, one])]
    rng = np.random.default_rng(0)

    def conv(n):
        return [rng.standard_normal((n, 3, 1, 1)).astype(np.float32),
                rng.standard_normal(n).astype(np.float32)]

    out += [('rpn_conv/3x3', 'Convolution', conv(4)),
            ('rpn_cls_score', 'Convolution', conv(2 * anchors)),
            ('rpn_bbox_pred', 'Convolution', conv(4 * anchors)),
            ('conv_new_1', 'Convolution', conv(4)),
            ('rfcn_cls', 'Convolution', conv(classes * bins)),
            ('rfcn_bbox', 'Convolution', conv(8 * bins)),
            ('psroipooled_cls_rois', 'PSROIPooling', []),
            ('cls_prob', 'Softmax', [])]
    return out


def _write(path, layers, v1=(), **blob_args):
    data = b''
    for name, kind, blobs in layers:
        if name in v1:
            data += layer_v1(name, kind, blobs, **blob_args)
        else:
            data += layer(name, kind, blobs, **blob_args)
    path.write_bytes(data)
    return read_caffemodel(str(path))


@pytest.mark.parametrize('depth, data', [(101, 'voc0712'), (50, 'voc0712'),
                                         (101, 'coco')])
def test_every_weight_lands_on_the_models_keys(tmp_path, depth, data):
    coco = data == 'coco'  # 81 classes, 12 anchors
    layers = _write(tmp_path / 'r.caffemodel',
                    net_layers(classes=81 if coco else 21,
                               anchors=12 if coco else 9,
                               blocks=BLOCKS if depth == 101 else BLOCKS_R50))
    assert resnet_depth(layers) == depth
    out, report = convert_layers(layers)
    init_default_scope('mmdet')
    config = osp.join(ROOT, 'configs', 'rfcn',
                      f'rfcn_r{depth}_pyrfcn_{data}.py')
    model = MODELS.build(Config.fromfile(config).model)
    keys = {k for k in model.state_dict() if 'num_batches_tracked' not in k}
    assert set(out) == keys
    # the heads' output channels follow the classes and anchors
    # (the fixture's blobs are (n, 3, 1, 1))
    heads = [f'rpn_head.rpn_{n}.weight' for n in ('cls', 'reg')] + [
        f'roi_head.bbox_head.conv_{n}.weight' for n in ('cls', 'reg')]
    assert all(model.state_dict()[k].shape[0] == out[k].shape[0]
               for k in heads), [(k, out[k].shape) for k in heads]
    # test_agnostic.prototxt: 110 convolutions, 104 BatchNorm + Scale
    # (ResNet-50: 59 and 53)
    convs, norms = (110, 104) if depth == 101 else (59, 53)
    assert report[0].startswith(f'{convs} convolutions, {norms} BatchNorms, '
                                f'{norms} Scales; 4 layers without weights')


def test_the_tool_picks_the_config_of_the_depth(tmp_path):
    """A ResNet-50 file is checked against rfcn_r50_pyrfcn_voc0712.py (its
    res4 has 6 blocks), whose res4f exists."""
    path, dst = tmp_path / 'resnet50_rfcn_final.caffemodel', tmp_path / 'o.pth'
    _write(path, net_layers(blocks=BLOCKS_R50)[:-8])
    proc = run_tool_here(TOOL, path, dst, cwd=tmp_path)
    assert proc.returncode != 0
    assert 'rfcn_r50_pyrfcn_voc0712.py' in proc.stdout
    assert 'backbone.layer3.5.conv1.weight: checkpoint (2,)' in proc.stderr
    assert not dst.exists()
    # 81 classes: the COCO config; a ResNet-50 with 81 has none
    _write(path, net_layers(classes=81, anchors=12)[-8:] +
           net_layers(blocks=BLOCKS_R50)[:-8])
    proc = run_tool_here(TOOL, path, dst, cwd=tmp_path)
    assert 'no legacy config for a ResNet-50 with 81 classes' in proc.stderr
    path = tmp_path / 'coco.caffemodel'
    _write(path, net_layers(classes=81, anchors=12)[-8:] +
           net_layers()[:-8])
    proc = run_tool_here(TOOL, path, dst, cwd=tmp_path)
    assert 'rfcn_r101_pyrfcn_coco.py' in proc.stdout


def test_an_unknown_depth_is_named(tmp_path):
    layers = _write(tmp_path / 'r.caffemodel',
                    net_layers(blocks={4: ['a', 'b', 'c']})[5:])
    with pytest.raises(UnknownLayerError, match='res4 has 3 blocks'):
        resnet_depth(layers)


def test_batch_norm_scale_factor_and_scale(tmp_path):
    mean = np.array([2., 4., 6.], np.float32)
    var = np.array([8., 10., 12.], np.float32)
    layers = [('bn4b22_branch2c', 'BatchNorm', [mean, var, np.array([2.])]),
              ('scale4b22_branch2c', 'Scale',
               [np.array([1., 2., 3.]), np.array([4., 5., 6.])]),
              ('bn2a_branch1', 'BatchNorm',
               [mean, var, np.array([0.])])]  # no statistics
    out, report = convert_layers(_write(tmp_path / 'bn.caffemodel', layers))
    prefix = 'backbone.layer3.22.bn3.'
    np.testing.assert_array_equal(out[prefix + 'running_mean'], mean / 2)
    np.testing.assert_array_equal(out[prefix + 'running_var'], var / 2)
    np.testing.assert_array_equal(out[prefix + 'weight'], [1, 2, 3])
    np.testing.assert_array_equal(out[prefix + 'bias'], [4, 5, 6])
    np.testing.assert_array_equal(
        out['backbone.layer1.0.downsample.1.running_mean'], 0)
    assert 'BatchNorm scale factors: 0, 2' in report


def test_v1_layers_and_unpacked_floats_read_the_same(tmp_path):
    layers = net_layers(bins=4, classes=3)[-8:]
    packed, _ = convert_layers(_write(tmp_path / 'a.caffemodel', layers),
                               bins=4)
    old, _ = convert_layers(
        _write(tmp_path / 'b.caffemodel', layers,
               v1={'rpn_conv/3x3', 'rfcn_cls'}, packed=False,
               legacy_dims=True), bins=4)
    assert packed.keys() == old.keys()
    for k in packed:
        np.testing.assert_array_equal(packed[k], old[k])


def test_swapping_two_classes_in_the_file_swaps_them_in_the_head(tmp_path):
    bins, classes = 4, 4
    layers = net_layers(bins=bins, classes=classes)[-8:]
    base, _ = convert_layers(_write(tmp_path / 'a.caffemodel', layers), bins)
    swapped = []
    for name, kind, blobs in layers:
        if name == 'rfcn_cls':  # classes 1 and 3 (0 is background)
            blobs = [b.copy() for b in blobs]
            for b in blobs:
                b[1 * bins:2 * bins], b[3 * bins:4 * bins] = (
                    b[3 * bins:4 * bins].copy(), b[1 * bins:2 * bins].copy())
        swapped.append((name, kind, blobs))
    other, _ = convert_layers(_write(tmp_path / 'b.caffemodel', swapped),
                              bins)
    w0, w1 = (base['roi_head.bbox_head.conv_cls.weight'],
              other['roi_head.bbox_head.conv_cls.weight'])
    # rfcn_mm's classes 0 and 2 (the file's 1 and 3) trade places; the
    # others (class 1 and the background, now last) do not move
    np.testing.assert_array_equal(w1[0:bins], w0[2 * bins:3 * bins])
    np.testing.assert_array_equal(w1[2 * bins:3 * bins], w0[0:bins])
    np.testing.assert_array_equal(w1[bins:2 * bins], w0[bins:2 * bins])
    np.testing.assert_array_equal(w1[3 * bins:], w0[3 * bins:])


def test_unknown_layers_are_refused_by_name(tmp_path):
    layers = [('fc1000', 'InnerProduct', [np.ones((2, 2))])]
    with pytest.raises(UnknownLayerError, match='layer fc1000 '
                       r'\(InnerProduct, 1 blobs\) has no place'):
        convert_layers(_write(tmp_path / 'x.caffemodel', layers))
    layers = [('bn_conv1', 'BatchNorm', [np.ones(2), np.ones(2)])]
    with pytest.raises(UnknownLayerError, match='has 2 blobs; expected 3'):
        convert_layers(_write(tmp_path / 'y.caffemodel', layers))
