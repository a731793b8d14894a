"""The CUDA kernels of deformable PS RoI pooling, built for the host
(host_cuda), against the CPU op: both coordinate modes, with and without
offsets, forward and backward, float32 and float64; and on NaN, infinite
and huge RoIs and offsets under AddressSanitizer + UBSan."""
import struct

import host_cuda
import numpy as np
import pytest
import torch
from helpers.roi_cases import make_rois

from rfcn_mm.ops import deform_ps_roi_pool

pytestmark = host_cuda.needs_gxx


@pytest.fixture(scope='module')
def kernels(tmp_path_factory):
    return host_cuda.build('deform_ps_roi_on_host',
                           tmp_path_factory.mktemp('deform_host'))


@pytest.fixture(scope='module')
def sanitized(tmp_path_factory):
    if not host_cuda._gxx_has_sanitizers():
        pytest.skip('g++ without AddressSanitizer / UBSan')
    return host_cuda.build('deform_ps_roi_on_host',
                           tmp_path_factory.mktemp('deform_san'),
                           sanitize=True)


def on_host(exe, x, rois, off, k, samples, legacy, grad=None, scale=0.5,
            trans_std=0.1):
    dtype = x.dtype
    f64 = dtype == torch.float64
    groups = off.size(1) // 2 if off is not None else 1
    part = off.shape[2:] if off is not None else (k, k)
    head = struct.pack('<15i2d', int(grad is not None), int(f64),
                       int(legacy), int(off is not None), x.size(0),
                       x.size(1), x.size(2), x.size(3), k, k, part[0],
                       part[1], samples, groups, rois.size(0), scale,
                       trans_std)
    body = [x, rois] + ([off] if off is not None else []) + \
        ([grad] if grad is not None else [])
    data = head + b''.join(t.contiguous().numpy().tobytes() for t in body)
    out = np.frombuffer(host_cuda.run(exe, data),
                        dtype=np.float64 if f64 else np.float32)
    return torch.from_numpy(out.copy())


def case(dtype, groups, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 2 * k * k, 7, 9, generator=g, dtype=dtype)
    rois = make_rois(2, 7, 9, 0.5, num=14, seed=seed, dtype=dtype)
    off = None if groups is None else torch.randn(
        rois.size(0), 2 * groups, k, k, generator=g, dtype=dtype) * 0.5
    return x, rois, off


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('legacy', [False, True])
@pytest.mark.parametrize('groups', [None, 1, 2])
def test_cuda_kernels_on_host_match_cpu(kernels, dtype, legacy, groups):
    x, rois, off = case(dtype, groups)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(
        rtol=1e-10, atol=1e-10)
    x = x.requires_grad_()
    if off is not None:
        off.requires_grad_()
    want = deform_ps_roi_pool(x, rois, off, 3, 0.5, sample_per_part=2,
                              legacy=legacy)
    got = on_host(kernels, x.detach(), rois,
                  None if off is None else off.detach(), 3, 2, legacy)
    torch.testing.assert_close(got.view_as(want), want.detach(), **tol)
    grad = torch.randn_like(want)
    want.backward(grad)
    got = on_host(kernels, x.detach(), rois,
                  None if off is None else off.detach(), 3, 2, legacy, grad)
    gx = got[:x.numel()].view_as(x)
    torch.testing.assert_close(gx, x.grad, **tol)
    if off is not None:
        torch.testing.assert_close(got[x.numel():].view_as(off), off.grad,
                                   **tol)


@pytest.mark.parametrize('legacy', [False, True])
def test_cuda_kernels_on_host_survive_bad_rois_and_offsets(
        sanitized, legacy):
    x = torch.randn(2, 18, 7, 9)
    rois = torch.tensor([[0., float('nan'), 1, 5, 5],
                         [1., 1, float('inf'), 5, 5], [7., 1, 1, 5, 5],
                         [-1., 1, 1, 5, 5], [0., -1e9, -1e9, 1e9, 1e9],
                         [1., 2, 2, 6, 6]])
    off = torch.zeros(6, 4, 3, 3)
    off[5, 0] = float('nan')
    off[4, 1] = float('inf')
    off[0, 2] = 1e30
    out = on_host(sanitized, x, rois, off, 3, 2, legacy).view(6, 2, 3, 3)
    want = deform_ps_roi_pool(x, rois, off, 3, 0.5, sample_per_part=2,
                              legacy=legacy, check_batch_idx=False)
    assert (out[:4] == 0).all()  # bad batch index or coordinate: 0
    torch.testing.assert_close(out, want, equal_nan=True)
    grad = torch.ones(6, 2, 3, 3)
    on_host(sanitized, x, rois, off, 3, 2, legacy, grad)  # no finding
