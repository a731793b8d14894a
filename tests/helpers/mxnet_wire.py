"""MXNet ``.params`` files written without MXNet (the NDArray list format,
V2 records, float32), for converter tests."""
import struct

import numpy as np


def write_params(path, arrays):
    """``arrays`` ({name: array}) as ``mx.nd.save`` writes a dict."""
    out = [struct.pack('<QQQ', 0x112, 0, len(arrays))]
    for a in arrays.values():
        a = np.asarray(a, np.float32)
        out.append(struct.pack('<IiI', 0xF993FAC9, 0, a.ndim))
        out.append(struct.pack(f'<{a.ndim}q', *a.shape))
        out.append(struct.pack('<iii', 1, 0, 0) + a.tobytes())
    out.append(struct.pack('<Q', len(arrays)))
    for name in arrays:
        out.append(struct.pack('<Q', len(name)) + name.encode())
    with open(path, 'wb') as f:
        f.write(b''.join(out))
