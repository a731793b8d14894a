"""The CUDA kernels of PS RoI pooling and align, run on the host (see
``host_cuda``), against the CPU ops: every kernel on every path its
launcher can take, in float32 and float64, on RoIs of every kind
(``roi_cases.make_rois``), pooling in both coordinate modes (``aligned``
False stands for its ``legacy=True``). ``test_ps_roi_common.py`` checks the
real kernels on a GPU."""
import struct

import host_cuda
import numpy as np
import pytest
import torch
from helpers.roi_cases import make_rois

from rfcn_mm.ops import ps_roi_align, ps_roi_pool

pytestmark = host_cuda.needs_gxx

K, CLASSES, SCALE = 3, 2, 1 / 16
# (op, backward, plane): the paths of the launchers; align's forward has one
PATHS = [('pool', False, False), ('pool', False, True), ('pool', True, False),
         ('pool', True, True), ('align', False, False), ('align', True, False),
         ('align', True, True)]


@pytest.fixture(scope='module')
def host_kernels(tmp_path_factory):
    return host_cuda.build('ps_roi_on_host',
                           tmp_path_factory.mktemp('ps_roi_on_host'))


def cpu_op(op, aligned, sampling_ratio=2, check=True):
    if op == 'pool':  # pooling: aligned=False stands for legacy=True
        return lambda x, rois: ps_roi_pool(x, rois, K, SCALE, check,
                                           not aligned)
    return lambda x, rois: ps_roi_align(x, rois, K, SCALE, sampling_ratio,
                                        aligned, check)


def run_on_host(exe,
                op,
                backward,
                plane,
                x,
                rois,
                aligned,
                shape,
                sampling_ratio=2):
    """The kernel's output (forward, x is the input) or input gradient
    (backward, x is the output gradient; shape is the input's)."""
    batch, channels, height, width = shape
    f64 = x.dtype == torch.float64
    head = struct.pack('<13id', int(op == 'align'), int(backward), int(plane),
                       int(f64), batch, channels, height, width, K, K,
                       len(rois), sampling_ratio, int(aligned), SCALE)
    out = host_cuda.run(exe,
                        head + x.numpy().tobytes() + rois.numpy().tobytes())
    out = np.frombuffer(out, dtype=np.float64 if f64 else np.float32)
    size = (shape if backward else (len(rois), channels // (K * K), K, K))
    return torch.from_numpy(out.copy()).view(size)


def case(batch, height, width, num, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    channels = CLASSES * K * K
    x = torch.randn(batch, channels, height, width, generator=g, dtype=dtype)
    rois = make_rois(
        batch, height, width, SCALE, num=num, seed=seed, dtype=dtype)
    grad_out = torch.randn(num, CLASSES, K, K, generator=g, dtype=dtype)
    return x, rois, grad_out


def expected(op,
             backward,
             x,
             rois,
             grad_out,
             aligned,
             sampling_ratio=2,
             check=True):
    fn = cpu_op(op, aligned, sampling_ratio, check)
    if not backward:
        return fn(x, rois)
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(fn(x, rois), x, grad_out)[0]


@pytest.mark.parametrize(
    'op,backward,plane,aligned',
    [(op, backward, plane, aligned) for op, backward, plane in PATHS
     for aligned in (True, False)])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('num', [30, 600])  # RoIs per thread: < 1, > 1
def test_cuda_kernels_on_host_match_cpu(host_kernels, op, backward, plane,
                                        aligned, dtype, num):
    x, rois, grad_out = case(2, 9, 13, num, dtype)
    got = run_on_host(host_kernels, op, backward, plane,
                      grad_out if backward else x, rois, aligned, x.shape)
    want = expected(op, backward, x, rois, grad_out, aligned)
    tol = {} if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, want, **tol)


@pytest.fixture(scope='module')
def sanitized_kernels(tmp_path_factory):
    if not host_cuda._gxx_has_sanitizers():
        pytest.skip('g++ cannot build with AddressSanitizer and UBSan')
    return host_cuda.build(
        'ps_roi_on_host',
        tmp_path_factory.mktemp('ps_roi_on_host_sanitized'),
        sanitize=True)


def bad_rois(dtype):
    """RoIs of every kind plus NaN, infinite and huge coordinates and batch
    indices; the checks refuse the non-finite ones, the kernels must still
    pool them as zeros (checks off), reading nothing out of bounds."""
    inf, nan = float('inf'), float('nan')
    good = make_rois(2, 9, 13, SCALE, num=20, dtype=torch.float64)
    bad = torch.tensor(
        [[0, nan, 10, 80, 90], [1, 10, nan, 80, 90], [0, 10, 10, nan, 90],
         [1, 10, 10, 80, nan], [nan, 10, 10, 80, 90], [inf, 10, 10, 80, 90],
         [-inf, 10, 10, 80, 90], [0, -inf, -inf, inf, inf],
         [1, inf, 10, -inf, 90], [0, 0, 0, 1e10, 1e10],
         [1, -1e10, -1e10, 1e10, 1e10], [0, 3e9, 3e9, 7e9, 7e9],
         [1, 0, 0, 1e30, 1e30], [0, -1e38, -1e38, 1e38, 1e38],
         [5e9, 10, 10, 80, 90], [-5e9, 10, 10, 80, 90]],
        dtype=torch.float64)
    rois = torch.cat([good, bad])
    return rois[torch.randperm(len(rois),
                               generator=torch.Generator().manual_seed(0))
                ].to(dtype)


@pytest.mark.parametrize(
    'op,backward,plane,aligned,sampling_ratio',
    [(op, backward, plane, aligned, ratio) for op, backward, plane in PATHS
     for aligned, ratio in (((True, 2), (True, 0)) if op == 'align' else
                            ((True, 2), (False, 2)))])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_cuda_kernels_on_host_survive_bad_rois(sanitized_kernels, op,
                                               backward, plane, aligned,
                                               sampling_ratio, dtype):
    """Under AddressSanitizer and UBSan (any out-of-bounds access or
    out-of-range float-to-int cast fails the run), the CUDA kernels give
    what the CPU kernels give with the checks off: zeros for the RoIs
    that name no image or have a non-finite coordinate, the reference's
    answer for huge finite ones; and they finish (huge adaptive RoIs visit
    only their samples on the map)."""
    g = torch.Generator().manual_seed(1)
    rois = bad_rois(dtype)
    x = torch.randn(2, CLASSES * K * K, 9, 13, generator=g, dtype=dtype)
    grad_out = torch.randn(len(rois), CLASSES, K, K, generator=g, dtype=dtype)
    got = run_on_host(sanitized_kernels, op, backward, plane,
                      grad_out if backward else x, rois, aligned, x.shape,
                      sampling_ratio)
    want = expected(op, backward, x, rois, grad_out, aligned, sampling_ratio,
                    check=False)
    tol = {} if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, want, **tol)
    if not backward:
        finite = torch.isfinite(rois).all(1)
        assert (got[~finite] == 0).all()


def test_host_harness_sees_a_broken_kernel(tmp_path):
    """A pooling backward that drops one corner of each bin's difference
    array fails the comparison."""
    exe = host_cuda.build(
        'ps_roi_on_host', tmp_path,
        host_cuda.replacing(
            'ps_roi_pool_cuda_kernel.cuh',
            'if (we < width) gpuAtomicAdd(diff + hs * stride + we, -v);', ''))
    x, rois, grad_out = case(1, 9, 13, 10, torch.float64)
    got = run_on_host(exe, 'pool', True, True, grad_out, rois, True, x.shape)
    assert not torch.allclose(got,
                              expected('pool', True, x, rois, grad_out, True))
