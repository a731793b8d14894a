"""The MXNet ``.params`` reader: records in each NDArray version written
here byte by byte from the format's description, refusals by name, and
files written by MXNet 1.9.1 itself (the oracle) read back exactly."""
import struct

import numpy as np
import pytest
from helpers.mxnet_oracle import run_mxnet

from rfcn_mm.converters import MXNetParamsError, read_params

FLAGS = {np.dtype(np.float32): 0, np.dtype(np.float64): 1,
         np.dtype(np.float16): 2, np.dtype(np.int32): 4}


def _record(array, version):
    flag = FLAGS[array.dtype]
    if version == 'legacy':
        head = struct.pack('<I', array.ndim) + struct.pack(
            f'<{array.ndim}I', *array.shape)
    else:
        head = struct.pack('<I', {'v1': 0xF993FAC8, 'v2': 0xF993FAC9}[version])
        if version == 'v2':
            head += struct.pack('<i', 0)  # dense
        head += struct.pack('<I', array.ndim) + struct.pack(
            f'<{array.ndim}q', *array.shape)
    return (head + struct.pack('<ii', 1, 0) + struct.pack('<i', flag) +
            array.astype(array.dtype.newbyteorder('<')).tobytes())


def _file(path, arrays, version='v2', names=True):
    out = struct.pack('<QQQ', 0x112, 0, len(arrays))
    for a in arrays.values():
        out += _record(a, version)
    if names:
        out += struct.pack('<Q', len(arrays))
        for name in arrays:
            raw = name.encode()
            out += struct.pack('<Q', len(raw)) + raw
    else:
        out += struct.pack('<Q', 0)
    path.write_bytes(out)
    return str(path)


def _arrays():
    rng = np.random.default_rng(0)
    return {
        'arg:conv1_weight': rng.standard_normal((4, 3, 7, 7)).astype(
            np.float32),
        'aux:bn_conv1_moving_var': rng.random(4).astype(np.float32) + 0.5,
        'arg:rfcn_bbox_weight_test': rng.standard_normal((8, 2, 1, 1)),
        'arg:half': rng.standard_normal(5).astype(np.float16),
        'arg:count': np.arange(6, dtype=np.int32).reshape(2, 3),
    }


@pytest.mark.parametrize('version', ['v2', 'v1', 'legacy'])
def test_every_record_version_reads_back(tmp_path, version):
    arrays = _arrays()
    got = read_params(_file(tmp_path / 'm.params', arrays, version))
    assert list(got) == list(arrays)
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype and got[name].shape == a.shape
        np.testing.assert_array_equal(got[name], a)


def test_an_unnamed_list_gets_indices(tmp_path):
    arrays = _arrays()
    got = read_params(_file(tmp_path / 'l.params', arrays, names=False))
    assert list(got) == [str(i) for i in range(len(arrays))]


def test_bad_files_are_named(tmp_path):
    good = (tmp_path / 'g.params')
    _file(good, _arrays())
    raw = good.read_bytes()
    cut = tmp_path / 'cut.params'
    cut.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(MXNetParamsError, match='cut.params .*truncated'):
        read_params(str(cut))
    other = tmp_path / 'model.pth'
    other.write_bytes(b'PK\x03\x04' + bytes(40))
    with pytest.raises(MXNetParamsError, match='NDArray-list magic'):
        read_params(str(other))
    sparse = tmp_path / 's.params'
    sparse.write_bytes(
        struct.pack('<QQQ', 0x112, 0, 1) + struct.pack('<Ii', 0xF993FAC9, 1))
    with pytest.raises(MXNetParamsError, match='storage type 1'):
        read_params(str(sparse))


def test_files_written_by_mxnet(tmp_path):
    """mx.nd.save of a dict (as Deformable-ConvNets' checkpoints) and of a
    list, with the values MXNet holds saved beside as .npy files."""
    out = run_mxnet(
        """
import mxnet as mx, numpy as np
rng = np.random.RandomState(0)
named = {'arg:res5a_branch2b_offset_weight': rng.randn(72, 512, 3, 3),
         'aux:bn5a_branch2b_moving_mean': rng.randn(512),
         'arg:rfcn_cls_weight': rng.randn(3969, 1024, 1, 1)}
nd = {k: mx.nd.array(v, dtype='float32') for k, v in named.items()}
nd['arg:f64'] = mx.nd.array(rng.randn(3, 2), dtype='float64')
mx.nd.save('named.params', nd)
mx.nd.save('list.params', [mx.nd.array(rng.randn(2, 2)), mx.nd.ones((3,))])
for k, v in mx.nd.load('named.params').items():
    np.save(k.replace(':', '_') + '.npy', v.asnumpy())
for i, v in enumerate(mx.nd.load('list.params')):
    np.save('list_%d.npy' % i, v.asnumpy())
print(open('named.params', 'rb').read(28)[24:28].hex())
""", cwd=str(tmp_path))
    got = read_params(str(tmp_path / 'named.params'))
    assert sorted(got) == sorted([
        'arg:res5a_branch2b_offset_weight', 'aux:bn5a_branch2b_moving_mean',
        'arg:rfcn_cls_weight', 'arg:f64'
    ])
    for name, value in got.items():
        expected = np.load(tmp_path / (name.replace(':', '_') + '.npy'))
        assert value.dtype == expected.dtype, name
        np.testing.assert_array_equal(value.reshape(expected.shape),
                                      expected)
    listed = read_params(str(tmp_path / 'list.params'))
    for i in range(2):
        np.testing.assert_array_equal(listed[str(i)],
                                      np.load(tmp_path / f'list_{i}.npy'))
    assert out.strip()  # the first record's magic, for the log
