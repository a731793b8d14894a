"""The CUDA kernels of sorted_nms, run on the host, against the CPU op.

CI has no GPU, so this is where the CUDA walk over the overlap mask is
checked on every change: ``cuda_on_host/`` compiles the kernels' own source
with g++, one std::thread per CUDA thread and a std::barrier for
``__syncthreads``. It checks the kernels' logic (which boxes are kept, what
is read, that every thread meets every barrier), not the GPU's memory model;
``test_sorted_nms.py`` checks the real kernels on a GPU.
"""
import os.path as osp
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch
from test_sorted_nms import random_boxes

from rfcn_mm.ops import sorted_nms

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.join(ROOT, 'tests', 'test_ops', 'cuda_on_host')
COMMON = osp.join(ROOT, 'rfcn_mm', 'ops', 'csrc', 'common')
KERNELS = osp.join(COMMON, 'cuda', 'sorted_nms_cuda_kernel.cuh')

pytestmark = pytest.mark.skipif(
    shutil.which('g++') is None, reason='needs g++ to build the kernels')


def host_source(text):
    """The kernels with their block-wide arrays made static (one block runs
    at a time) and the dynamic one bound to the harness's array."""
    text, dynamic = re.subn(
        r'extern __shared__ unsigned long long removed\[\];',
        'extern unsigned long long removed[];', text)
    text, static = re.subn(r'(?m)^(\s*)__shared__ ', r'\1static ', text)
    assert dynamic == 1 and static >= 2, 'the kernels\' shared arrays moved'
    assert '__shared__' not in text
    return text


def compile_on_host(kernels_text, build):
    """The harness built with the given kernel source; its path."""
    (build / 'sorted_nms_kernels.cuh').write_text(host_source(kernels_text))
    exe = build / 'sorted_nms_on_host'
    subprocess.run([
        'g++', '-std=c++20', '-O2', '-pthread', '-Wall',
        '-Wno-unknown-pragmas', f'-I{build}', f'-I{HERE}', f'-I{COMMON}',
        osp.join(HERE, 'sorted_nms_on_host.cpp'), '-o',
        str(exe)
    ],
                   check=True)
    return str(exe)


@pytest.fixture(scope='module')
def kernels_text():
    with open(KERNELS) as f:
        return f.read()


@pytest.fixture(scope='module')
def host_kernels(kernels_text, tmp_path_factory):
    return compile_on_host(kernels_text,
                           tmp_path_factory.mktemp('sorted_nms_on_host'))


def run_on_host(exe, cases):
    """Keep indices of each (boxes, valid, threshold, max_num) case."""
    data = b''
    for boxes, valid, thr, max_num in cases:
        n, m = valid.shape
        data += struct.pack('iiif', n, m, max_num, thr)
        data += boxes.numpy().astype(np.float32).tobytes()
        data += valid.numpy().astype(np.uint8).tobytes()
    proc = subprocess.run([exe], input=data, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    out = np.frombuffer(proc.stdout, dtype=np.int64)
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


@pytest.mark.parametrize('num', [1, 63, 64, 65, 130, 700])
def test_cuda_kernels_on_host_match_cpu(host_kernels, num):
    boxes, valid = sorted_images(num, seed=num)
    cases = [(boxes, valid, thr, max_num) for thr in (0.3, 0.7)
             for max_num in sorted({1, 5, 63, 64, 65, 300, num + 3})]
    for (b, v, thr, max_num), got in zip(cases,
                                         run_on_host(host_kernels, cases)):
        want = sorted_nms(b, v, thr, max_num)
        assert torch.equal(got, want), (thr, max_num)


def test_host_harness_sees_a_broken_walk(kernels_text, tmp_path):
    """The harness fails a walk that forgets the overlaps within a word."""
    broken = kernels_text.replace('live &= ~diag[b] & ~(1ULL << b);',
                                  'live &= ~(1ULL << b);')
    assert broken != kernels_text
    exe = compile_on_host(broken, tmp_path)
    boxes, valid = sorted_images(130, seed=3)
    got, = run_on_host(exe, [(boxes, valid, 0.5, 200)])
    assert not torch.equal(got, sorted_nms(boxes, valid, 0.5, 200))
