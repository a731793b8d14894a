"""A minimal writer of Caffe's ``NetParameter`` in protobuf's wire format,
written from caffe.proto's field numbers, independent of the reader under
test: layers (current and V1), blobs with a shape or the legacy four
dimensions, packed or one-by-one floats."""
import struct

import numpy as np


def varint(n):
    out = b''
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def key(number, wire):
    return varint(number << 3 | wire)


def field_bytes(number, payload):
    return key(number, 2) + varint(len(payload)) + payload


def field_int(number, value):
    return key(number, 0) + varint(value)


def blob(array, packed=True, legacy_dims=False):
    """BlobProto: shape (7) or num/channels/height/width (1-4); data (5)
    packed or one fixed32 per value."""
    array = np.asarray(array, np.float32)
    if legacy_dims:
        dims = (1, ) * (4 - array.ndim) + array.shape
        head = b''.join(field_int(i + 1, d) for i, d in enumerate(dims))
    else:
        head = field_bytes(7, field_bytes(1, b''.join(
            varint(d) for d in array.shape)))
    if packed:
        data = field_bytes(5, array.astype('<f4').tobytes())
    else:
        data = b''.join(key(5, 5) + struct.pack('<f', v)
                        for v in array.ravel())
    return head + data


def layer(name, kind, blobs, **blob_args):
    """A LayerParameter (NetParameter field 100)."""
    return field_bytes(
        100,
        field_bytes(1, name.encode()) + field_bytes(2, kind.encode()) +
        b''.join(field_bytes(7, blob(b, **blob_args)) for b in blobs))


V1_TYPES = {'Convolution': 4, 'ReLU': 18, 'Pooling': 17}


def layer_v1(name, kind, blobs, **blob_args):
    """A V1LayerParameter (NetParameter field 2)."""
    return field_bytes(
        2,
        field_bytes(4, name.encode()) + field_int(5, V1_TYPES[kind]) +
        b''.join(field_bytes(6, blob(b, **blob_args)) for b in blobs))
