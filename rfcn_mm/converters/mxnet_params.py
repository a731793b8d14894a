"""Reading MXNet's ``.params`` files without MXNet.

``mx.nd.save`` writes a list of NDArrays and, for a dict, their names
(little-endian throughout)::

    u64 0x112 (the NDArray-list magic) | u64 0 | u64 N | N NDArrays
    | u64 K | K x (u64 length, UTF-8 name)            (K = 0 or N)

Each NDArray record starts with a u32 that says its version:

- ``0xF993FAC9`` (V2): i32 storage type (0 dense), the shape (u32 ndim,
  ndim x i64), then, unless ndim is 0, the context (i32 device type, i32
  device id), the i32 type flag and the raw data;
- ``0xF993FAC8`` (V1): the same without the storage type;
- anything else (the first format): that u32 is ndim, ndim x u32 dims,
  then as V1.

Type flags: 0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8,
6 int64. Deformable-ConvNets saves its checkpoints this way, with names
``arg:<parameter>`` and ``aux:<BatchNorm statistic>``.
"""
from typing import Dict, List, Tuple

import numpy as np

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
DTYPES = {
    0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32,
    5: np.int8, 6: np.int64
}


class MXNetParamsError(ValueError):
    """A file that is not a readable MXNet NDArray list."""


class _Reader:

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise MXNetParamsError(
                f'truncated at byte {self.pos} (reading {what}: {size} bytes '
                f'wanted, {len(self.data) - self.pos} left)')
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def scalar(self, fmt: str, what: str) -> int:
        dtype = np.dtype(fmt)
        return int(np.frombuffer(self.take(dtype.itemsize, what), dtype)[0])

    def dims(self, ndim: int, fmt: str, what: str) -> Tuple[int, ...]:
        dtype = np.dtype(fmt)
        raw = self.take(ndim * dtype.itemsize, what)
        return tuple(int(d) for d in np.frombuffer(raw, dtype))


def _ndarray(r: _Reader, index: int) -> np.ndarray:
    where = f'array {index}'
    magic = r.scalar('<u4', f'{where} header')
    if magic == V3_MAGIC:
        raise MXNetParamsError(
            f'{where} is in MXNet 2\'s numpy-shape format (0xF993FACA), '
            'which this reader does not read')
    if magic == V2_MAGIC:
        stype = r.scalar('<i4', f'{where} storage type')
        if stype != 0:
            raise MXNetParamsError(
                f'{where} has storage type {stype} (sparse); only dense '
                'arrays are read')
    if magic in (V1_MAGIC, V2_MAGIC):
        ndim = r.scalar('<u4', f'{where} ndim')
        shape = r.dims(ndim, '<i8', f'{where} shape')
    else:  # the first format: the u32 was ndim, dims are u32
        ndim = magic
        if ndim > 32:
            raise MXNetParamsError(
                f'{where} starts with {magic:#x}: neither an NDArray magic '
                'nor a plausible number of dimensions')
        shape = r.dims(ndim, '<u4', f'{where} shape')
    if ndim == 0:
        return np.zeros(0, dtype=np.float32)  # MXNet's "none" array
    if any(d < 0 for d in shape):
        raise MXNetParamsError(f'{where} has shape {shape}')
    r.take(8, f'{where} context')
    flag = r.scalar('<i4', f'{where} type flag')
    if flag not in DTYPES:
        raise MXNetParamsError(f'{where} has type flag {flag}; known: '
                               f'{sorted(DTYPES)}')
    dtype = np.dtype(DTYPES[flag]).newbyteorder('<')
    count = int(np.prod(shape))
    raw = r.take(count * dtype.itemsize, f'{where} data')
    return np.frombuffer(raw, dtype).astype(DTYPES[flag]).reshape(shape)


def read_params(path: str) -> Dict[str, np.ndarray]:
    """The arrays of an ``mx.nd.save`` file by name (in file order); an
    unnamed list gets the names ``'0'``, ``'1'``, ...

    Raises:
        MXNetParamsError: the file is not an MXNet NDArray list, or is
            truncated, naming the file and the byte.
    """
    with open(path, 'rb') as f:
        r = _Reader(f.read())
    try:
        magic = r.scalar('<u8', 'the list magic')
        if magic != LIST_MAGIC:
            raise MXNetParamsError(
                f'it starts with {magic:#x}, not the NDArray-list magic '
                f'{LIST_MAGIC:#x}')
        r.scalar('<u8', 'the reserved word')
        count = r.scalar('<u8', 'the array count')
        arrays: List[np.ndarray] = [_ndarray(r, i) for i in range(count)]
        num_names = r.scalar('<u8', 'the name count')
        if num_names not in (0, count):
            raise MXNetParamsError(
                f'{count} arrays but {num_names} names')
        names = []
        for i in range(num_names):
            size = r.scalar('<u8', f'name {i} length')
            names.append(r.take(size, f'name {i}').decode('utf-8'))
    except MXNetParamsError as e:
        raise MXNetParamsError(f'{path} is not a readable MXNet .params '
                               f'file: {e}') from None
    if not names:
        names = [str(i) for i in range(len(arrays))]
    if len(set(names)) != len(names):
        raise MXNetParamsError(f'{path} names an array twice')
    return dict(zip(names, arrays))
