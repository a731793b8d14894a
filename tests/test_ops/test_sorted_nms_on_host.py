"""The CUDA kernels of sorted_nms, run on the host, against the CPU op.

CI has no GPU, so this is where the CUDA walk over the overlap mask is
checked on every change (see ``host_cuda``); ``test_sorted_nms.py`` checks
the real kernels on a GPU. The mask starts poisoned, so a read of a word the
mask kernel did not write changes the result.
"""
import struct

import host_cuda
import numpy as np
import pytest
import torch
from test_sorted_nms import random_boxes

from rfcn_mm.ops import sorted_nms

pytestmark = host_cuda.needs_gxx


@pytest.fixture(scope='module')
def host_kernels(tmp_path_factory):
    return host_cuda.build('sorted_nms_on_host',
                           tmp_path_factory.mktemp('sorted_nms_on_host'))


def run_on_host(exe, cases):
    """Keep indices of each (boxes, valid, threshold, max_num) case."""
    data = b''
    for boxes, valid, thr, max_num in cases:
        n, m = valid.shape
        data += struct.pack('<iiif', n, m, max_num, thr)
        data += boxes.numpy().astype(np.float32).tobytes()
        data += valid.numpy().astype(np.uint8).tobytes()
    out = np.frombuffer(host_cuda.run(exe, data), dtype=np.int64)
    keeps, at = [], 0
    for _, valid, _, max_num in cases:
        size = valid.shape[0] * max_num
        keeps.append(
            torch.from_numpy(out[at:at + size].copy()).view(
                valid.shape[0], max_num))
        at += size
    assert at == len(out)
    return keeps


def sorted_images(num, seed):
    """Three images of clustered boxes in score order: one with a tenth of
    its boxes invalid, one all valid, one with nothing valid."""
    images = []
    for i in range(3):
        boxes, scores = random_boxes(num, seed=seed + i, size=300.)
        images.append(boxes[scores.sort(descending=True, stable=True)[1]])
    g = torch.Generator().manual_seed(seed)
    valid = torch.rand(3, num, generator=g) > .1
    valid[1] = True
    valid[2] = False
    return torch.stack(images), valid


@pytest.mark.parametrize('num', [1, 63, 64, 65, 130, 400])
def test_cuda_kernels_on_host_match_cpu(host_kernels, num):
    boxes, valid = sorted_images(num, seed=num)
    cases = [(boxes, valid, thr, max_num) for thr in (0.3, 0.7)
             for max_num in sorted({1, 5, 63, 64, 65, 300, num + 3})]
    for (b, v, thr, max_num), got in zip(cases,
                                         run_on_host(host_kernels, cases)):
        want = sorted_nms(b, v, thr, max_num)
        assert torch.equal(got, want), (thr, max_num)


def test_host_harness_sees_a_broken_walk(tmp_path):
    """The harness fails a walk that forgets the overlaps within a word."""
    exe = host_cuda.build(
        'sorted_nms_on_host', tmp_path,
        host_cuda.replacing('sorted_nms_cuda_kernel.cuh',
                            'live &= ~diag[b] & ~(1ULL << b);',
                            'live &= ~(1ULL << b);'))
    boxes, valid = sorted_images(130, seed=3)
    got, = run_on_host(exe, [(boxes, valid, 0.5, 200)])
    assert not torch.equal(got, sorted_nms(boxes, valid, 0.5, 200))
