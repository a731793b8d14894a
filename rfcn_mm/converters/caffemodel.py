"""Reading Caffe's ``.caffemodel`` files without Caffe or protobuf.

A ``.caffemodel`` is a serialised ``caffe.NetParameter`` message. This
reader decodes the protobuf wire format directly and keeps only what a
weight converter needs: each layer's name, type and blobs (as float32 or
float64 numpy arrays). It understands the current layer message
(``NetParameter.layer``, field 100: ``LayerParameter`` with name 1, type 2,
blobs 7) and the V1 one (``NetParameter.layers``, field 2:
``V1LayerParameter`` with name 4, type 5 as an enum, blobs 6), blobs with a
``BlobShape`` (field 7) or the legacy num/channels/height/width (1-4), and
floats packed or not (``data`` 5, ``double_data`` 8). Every other field is
skipped, so the layer parameters (convolution settings, the PS RoI pooling
parameters) do not need a schema. Field numbers are those of Caffe's
``caffe.proto`` (and of caffe-rfcn's, which only adds fields).
"""
from dataclasses import dataclass, field
from typing import Iterator, List, Tuple

import numpy as np

# V1LayerParameter.LayerType values -> the current type names
V1_TYPES = {
    0: 'None', 35: 'AbsVal', 1: 'Accuracy', 30: 'ArgMax', 2: 'BNLL',
    3: 'Concat', 37: 'ContrastiveLoss', 4: 'Convolution', 5: 'Data',
    39: 'Deconvolution', 6: 'Dropout', 32: 'DummyData', 7: 'EuclideanLoss',
    25: 'Eltwise', 38: 'Exp', 8: 'Flatten', 9: 'HDF5Data', 10: 'HDF5Output',
    28: 'HingeLoss', 11: 'Im2col', 12: 'ImageData', 13: 'InfogainLoss',
    14: 'InnerProduct', 15: 'LRN', 29: 'MemoryData',
    16: 'MultinomialLogisticLoss', 34: 'MVN', 17: 'Pooling', 26: 'Power',
    18: 'ReLU', 19: 'Sigmoid', 27: 'SigmoidCrossEntropyLoss', 36: 'Silence',
    20: 'Softmax', 21: 'SoftmaxWithLoss', 22: 'Split', 33: 'Slice',
    23: 'TanH', 24: 'WindowData', 31: 'Threshold'
}


class CaffeModelError(ValueError):
    """A file that is not a readable ``.caffemodel``."""


@dataclass
class CaffeLayer:
    """One layer of a ``.caffemodel``: its name, type and blobs."""
    name: str
    type: str
    blobs: List[np.ndarray] = field(default_factory=list)


def _varint(buf: memoryview, pos: int, end: int) -> Tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= end:
            raise CaffeModelError('truncated varint')
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CaffeModelError('varint longer than 10 bytes')


def _fields(buf: memoryview, pos: int,
            end: int) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of each field of the message in
    ``buf[pos:end]``: an int for varints, a memoryview for the others."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise CaffeModelError(
                f'field {number} has wire type {wire} (groups are not used '
                'by caffe.proto)')
        if pos > end:
            raise CaffeModelError(f'field {number} runs past its message')
        yield number, wire, value


def _floats(parts: List[Tuple[int, object]], dtype: str) -> np.ndarray:
    """The values of a repeated float/double field from its (wire type,
    value) occurrences: packed (wire type 2) or one value each."""
    little = np.dtype(dtype).newbyteorder('<')
    chunks = []
    for wire, value in parts:
        if len(value) % little.itemsize:
            raise CaffeModelError(f'{dtype} data of {len(value)} bytes')
        chunks.append(np.frombuffer(value, dtype=little))
    if not chunks:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(chunks).astype(dtype)


def _ints(parts: List[Tuple[int, object]]) -> List[int]:
    """A repeated int64 field, packed or not."""
    values = []
    for wire, value in parts:
        if wire == 0:
            values.append(value)
        else:
            pos = 0
            while pos < len(value):
                v, pos = _varint(value, pos, len(value))
                values.append(v)
    return values


def _blob(buf: memoryview, where: str) -> np.ndarray:
    parts = {}
    for number, wire, value in _fields(buf, 0, len(buf)):
        parts.setdefault(number, []).append((wire, value))
    shape = None
    if 7 in parts:  # BlobShape
        dims = []
        for _, shape_msg in parts[7]:
            for number, wire, value in _fields(shape_msg, 0, len(shape_msg)):
                if number == 1:
                    dims.append((wire, value))
        shape = tuple(_ints(dims))
    else:
        legacy = [
            parts[n][-1][1] if n in parts else None for n in (1, 2, 3, 4)
        ]
        if any(v is not None for v in legacy):
            shape = tuple(1 if v is None else int(v) for v in legacy)
    if 8 in parts:
        data = _floats(parts[8], 'float64')
    else:
        data = _floats(parts.get(5, []), 'float32')
    if shape is None:
        shape = (data.size, )
    if int(np.prod(shape)) != data.size:
        raise CaffeModelError(
            f'{where}: blob shape {shape} holds {int(np.prod(shape))} values '
            f'but {data.size} are stored')
    return data.reshape(shape)


def _text(value) -> str:
    return bytes(value).decode('utf-8', errors='replace')


def read_caffemodel(path: str) -> List[CaffeLayer]:
    """The layers of ``path`` in file order (V1 and current layers
    alike), each with its blobs.

    Raises:
        CaffeModelError: the file is not a ``NetParameter`` message
            (truncated, another format), naming the file.
    """
    with open(path, 'rb') as f:
        data = f.read()
    buf = memoryview(data)
    layers = []
    try:
        for number, wire, value in _fields(buf, 0, len(buf)):
            if wire != 2 or number not in (2, 100):
                continue  # name, inputs, state ...
            name, kind, blobs = None, None, []
            v1 = number == 2
            for n, w, v in _fields(value, 0, len(value)):
                if v1 and n == 1 and w == 2:
                    raise CaffeModelError(
                        'a V0 layer (V1LayerParameter.layer): this file '
                        'predates Caffe\'s V1 format; upgrade it with '
                        'Caffe\'s upgrade_net_proto_binary first')
                if n == (4 if v1 else 1) and w == 2:
                    name = _text(v)
                elif n == (5 if v1 else 2):
                    kind = (V1_TYPES.get(v, f'V1 type {v}')
                            if v1 and w == 0 else _text(v))
                elif n == (6 if v1 else 7) and w == 2:
                    blobs.append(v)
            name = name if name is not None else f'(layer {len(layers)})'
            layers.append(
                CaffeLayer(
                    name=name,
                    type=kind or '',
                    blobs=[
                        _blob(b, f'layer {name} blob {i}')
                        for i, b in enumerate(blobs)
                    ]))
    except CaffeModelError as e:
        raise CaffeModelError(f'{path} is not a readable .caffemodel: {e}'
                              ) from None
    if not layers:
        raise CaffeModelError(f'{path} holds no Caffe layer: not a '
                              '.caffemodel (NetParameter)')
    return layers
