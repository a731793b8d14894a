"""The .caffemodel reader against files written here in protobuf's wire
format, field by field from caffe.proto: current and V1 layers, packed and
unpacked floats, double data, legacy blob dimensions, fields the reader
must skip, and damaged files refused by name."""
import struct

import numpy as np
import pytest
from helpers.caffe_wire import blob
from helpers.caffe_wire import field_bytes as _bytes
from helpers.caffe_wire import field_int as _int
from helpers.caffe_wire import key as _key
from helpers.caffe_wire import varint as _varint

from rfcn_mm.converters import CaffeModelError, read_caffemodel


def _blob_new(array):
    return blob(array)


def _blob_v1(array):
    return blob(array, packed=False, legacy_dims=True)


def _blob_double(array):
    """A BlobShape with unpacked dims and packed double_data (8)."""
    dims = b''.join(_int(1, d) for d in array.shape)
    return _bytes(7, dims) + _bytes(8, array.astype('<f8').tobytes())


def _layer(name, kind, blobs, extra=b''):
    """A LayerParameter with ``extra`` fields (parameters to skip) before
    its blobs."""
    return _bytes(
        100,
        _bytes(1, name.encode()) + _bytes(2, kind.encode()) + extra +
        b''.join(_bytes(7, b) for b in blobs))


def _layer_v1(name, type_enum, blobs):
    return _bytes(
        2,
        _bytes(4, name.encode()) + _int(5, type_enum) +
        b''.join(_bytes(6, b) for b in blobs))


@pytest.fixture
def arrays():
    rng = np.random.default_rng(1)
    return dict(
        conv=rng.standard_normal((4, 3, 7, 7)).astype(np.float32),
        mean=rng.standard_normal(4).astype(np.float32),
        var=rng.random(4).astype(np.float32),
        factor=np.array([999.982], np.float32),
        fc=rng.standard_normal((2, 3, 1, 1)).astype(np.float32),
        score=rng.standard_normal((6, 4, 1, 1)))


def test_layers_blobs_and_skipped_fields(tmp_path, arrays):
    psroi = _bytes(10001, _key(1, 5) + struct.pack('<f', 0.0625) +
                   _int(2, 21) + _int(3, 7))  # psroi_pooling_param
    net = (
        _bytes(1, b'ResNet-101') +  # NetParameter.name
        _bytes(3, b'data') +  # input
        _layer('conv1', 'Convolution', [_blob_new(arrays['conv'])],
               extra=_bytes(106, _int(1, 64))) +  # convolution_param
        _layer('bn_conv1', 'BatchNorm', [
            _blob_new(arrays['mean']),
            _blob_new(arrays['var']),
            _blob_new(arrays['factor'])
        ]) +
        _layer('psroipooled_cls_rois', 'PSROIPooling', [], extra=psroi) +
        _layer_v1('fc', 14, [_blob_v1(arrays['fc'])]) +
        _layer('rfcn_cls', 'Convolution', [_blob_double(arrays['score'])]))
    path = tmp_path / 'net.caffemodel'
    path.write_bytes(net)
    layers = read_caffemodel(str(path))
    assert [(x.name, x.type, len(x.blobs)) for x in layers] == [
        ('conv1', 'Convolution', 1), ('bn_conv1', 'BatchNorm', 3),
        ('psroipooled_cls_rois', 'PSROIPooling', 0),
        ('fc', 'InnerProduct', 1), ('rfcn_cls', 'Convolution', 1)
    ]
    np.testing.assert_array_equal(layers[0].blobs[0], arrays['conv'])
    for got, key in zip(layers[1].blobs, ('mean', 'var', 'factor')):
        np.testing.assert_array_equal(got, arrays[key])
    np.testing.assert_array_equal(layers[3].blobs[0], arrays['fc'])
    assert layers[4].blobs[0].dtype == np.float64
    np.testing.assert_array_equal(layers[4].blobs[0], arrays['score'])


def test_damaged_files_are_named(tmp_path, arrays):
    good = _layer('conv1', 'Convolution', [_blob_new(arrays['conv'])])
    cut = tmp_path / 'cut.caffemodel'
    cut.write_bytes(good[:len(good) // 2])
    with pytest.raises(CaffeModelError, match='cut.caffemodel is not a '
                       'readable .caffemodel: field 100 runs past'):
        read_caffemodel(str(cut))
    wrong = tmp_path / 'wrong.caffemodel'
    bad_blob = _bytes(7, _bytes(1, _varint(5))) + _bytes(
        5, np.zeros(4, '<f4').tobytes())
    wrong.write_bytes(_layer('conv9', 'Convolution', [bad_blob]))
    with pytest.raises(CaffeModelError, match=r'layer conv9 blob 0: blob '
                       r'shape \(5,\) holds 5 values but 4 are stored'):
        read_caffemodel(str(wrong))
    text = tmp_path / 'deploy.prototxt'
    text.write_text('name: "ResNet-101"\nlayer {\n  name: "conv1"\n}\n')
    with pytest.raises(CaffeModelError, match='deploy.prototxt'):
        read_caffemodel(str(text))
    empty = tmp_path / 'empty.caffemodel'
    empty.write_bytes(_bytes(1, b'net'))
    with pytest.raises(CaffeModelError, match='holds no Caffe layer'):
        read_caffemodel(str(empty))
