"""PS RoI pooling with the reference's coordinates (``legacy=True``):
hand-computed cases, the pure-PyTorch reference, gradcheck, the ONNX
decomposition, and MXNet 1.9.1's ``contrib.PSROIPooling`` (the reference
implementation's own kernel, upstreamed into MXNet) in float64, forward
and gradients."""
import json

import numpy as np
import pytest
import torch
from helpers.mxnet_oracle import run_mxnet
from helpers.roi_cases import make_rois

from rfcn_mm.deploy.ps_roi_pool_sat import ps_roi_pool_by_summed_area
from rfcn_mm.ops import (PSRoIPool, ps_roi_align, ps_roi_pool,
                         ps_roi_pool_reference)


def test_hand_computed_rounding_and_inclusive_end():
    """RoI (0.4, 0.6, 2.5, 3.49) at scale 1, k = 2: corners round to
    (0, 1, 3, 3) (2.5 away from zero), the end is inclusive: columns [0, 4),
    rows [1, 4); bins 2 columns wide and 1.5 rows high: rows floor(1) to
    ceil(2.5) and floor(2.5) to ceil(4)."""
    x = torch.arange(4 * 25, dtype=torch.float64).view(1, 4, 5, 5)
    rois = torch.tensor([[0, 0.4, 0.6, 2.5, 3.49]], dtype=torch.float64)
    out = ps_roi_pool(x, rois, 2, 1.0, legacy=True)[0, 0]
    assert out[0, 0] == x[0, 0, 1:3, 0:2].mean()
    assert out[0, 1] == x[0, 1, 1:3, 2:4].mean()
    assert out[1, 0] == x[0, 2, 2:4, 0:2].mean()
    assert out[1, 1] == x[0, 3, 2:4, 2:4].mean()
    # the continuous mode reads other pixels for the same box
    assert not torch.equal(ps_roi_pool(x, rois, 2, 1.0)[0, 0], out)


def test_a_reversed_roi_is_one_pixel():
    """x2 < x1: the reference clamps the size to 0.1, so every bin reads
    the pixel at the rounded corner (the continuous mode: empty bins)."""
    x = torch.randn(1, 9, 6, 6, dtype=torch.float64)
    rois = torch.tensor([[0, 3.2, 2.8, 1, 1]], dtype=torch.float64)
    out = ps_roi_pool(x, rois, 3, 1.0, legacy=True)[0, 0]
    torch.testing.assert_close(out, x[0, :, 3, 3].view(3, 3))
    rois = torch.tensor([[0, 3, 3, 1, 1]], dtype=torch.float64)
    assert (ps_roi_pool(x, rois, 3, 1.0) == 0).all()
    torch.testing.assert_close(
        ps_roi_pool(x, rois, 3, 1.0, legacy=True)[0, 0],
        x[0, :, 3, 3].view(3, 3))


@pytest.mark.parametrize('k', [1, 3, 7])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_matches_reference(k, dtype):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(2, 3 * k * k, 12, 15, generator=g, dtype=dtype)
    rois = make_rois(2, 12, 15, 1 / 8, num=24, seed=k, dtype=dtype)
    x.requires_grad_(True)
    out = ps_roi_pool(x, rois, k, 1 / 8, legacy=True)
    ref = ps_roi_pool_reference(x, rois, k, 1 / 8, legacy=True)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(out, ref, **tol)
    grad_out = torch.randn(out.shape, generator=g, dtype=dtype)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, grad_out)[0],
        torch.autograd.grad(ref, x, grad_out)[0], **tol)


def test_gradcheck():
    x = torch.randn(2, 2 * 9, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = make_rois(2, 6, 7, 0.5, num=14, seed=3)
    assert torch.autograd.gradcheck(
        lambda t: ps_roi_pool(t, rois, 3, 0.5, legacy=True), (x, ))


def test_module_and_onnx_decomposition():
    x = torch.randn(2, 2 * 49, 10, 12, dtype=torch.float64)
    rois = make_rois(2, 10, 12, 1 / 16, num=30, seed=5)
    layer = PSRoIPool(7, 1 / 16, legacy=True)
    assert 'legacy=True' in repr(layer)
    out = layer(x, rois)
    torch.testing.assert_close(
        ps_roi_pool_by_summed_area(x, rois, 7, 7, 1 / 16, legacy=True), out)


@pytest.mark.cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_legacy_cuda_matches_cpu(dtype):
    """The CUDA kernels in the legacy mode: forward and gradient equal to
    the CPU kernels' (PS RoI pooling; PS RoI Align runs the deformable
    op's legacy kernels)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3 * 49, 13, 17, generator=g, dtype=dtype)
    rois = make_rois(2, 13, 17, 1 / 16, num=40, seed=1, dtype=dtype)
    grad = torch.randn(len(rois), 3, 7, 7, generator=g, dtype=dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else {}
    for op in (lambda t, r: ps_roi_pool(t, r, 7, 1 / 16, legacy=True),
               lambda t, r: ps_roi_align(t, r, 7, 1 / 16, 2, legacy=True)):
        results = []
        for device in ('cpu', 'cuda'):
            xd = x.to(device).requires_grad_()
            out = op(xd, rois.to(device))
            out.backward(grad.to(device))
            results.append((out.detach().cpu(), xd.grad.cpu()))
        for a, b in zip(*results):
            torch.testing.assert_close(b, a, **tol)


ORACLE = """
import json, numpy as np, mxnet as mx
from mxnet import autograd
case = json.load(open('case.json'))
x = mx.nd.array(np.load('x.npy'), dtype='float64')
rois = mx.nd.array(np.load('rois.npy'), dtype='float64')
g = mx.nd.array(np.load('g.npy'), dtype='float64')
x.attach_grad()
with autograd.record():
    y = mx.nd.contrib.PSROIPooling(
        x, rois, spatial_scale=case['scale'], output_dim=case['classes'],
        pooled_size=case['k'], group_size=case['k'])
y.backward(g)
np.save('y.npy', y.asnumpy())
np.save('dx.npy', x.grad.asnumpy())
"""


@pytest.mark.parametrize('k, scale', [(3, 1 / 16), (7, 1 / 16), (3, 0.5)])
def test_matches_mxnet_psroipooling(tmp_path, k, scale):
    """Random maps and RoIs of every kind (borders, outside, degenerate,
    tiny), plus corners on exact halves (C's rounding ties) and reversed
    boxes; MXNet's operator in float64 is the oracle for the output and
    the gradient to the maps."""
    rng = np.random.default_rng(k)
    classes, height, width = 3, 13, 17
    x = rng.standard_normal((2, classes * k * k, height, width))
    rois = make_rois(2, height, width, scale, num=40, seed=k).numpy()
    span = max(height, width) / scale
    halves = np.concatenate([
        rng.integers(0, 2, (12, 1)),
        np.round(rng.uniform(-0.2, 1.1, (12, 4)) * span) + 0.5
    ], 1)
    rois = np.concatenate([rois, halves])
    g = rng.standard_normal((len(rois), classes, k, k))
    for name, value in (('x', x), ('rois', rois), ('g', g)):
        np.save(tmp_path / f'{name}.npy', value)
    (tmp_path / 'case.json').write_text(
        json.dumps(dict(k=k, scale=scale, classes=classes)))
    run_mxnet(ORACLE, cwd=str(tmp_path))

    xt = torch.from_numpy(x).requires_grad_(True)
    out = ps_roi_pool(xt, torch.from_numpy(rois), k, scale, legacy=True)
    torch.testing.assert_close(out.detach().numpy(),
                               np.load(tmp_path / 'y.npy'))
    out.backward(torch.from_numpy(g))
    torch.testing.assert_close(xt.grad.numpy(), np.load(tmp_path / 'dx.npy'))


DEFORM_ORACLE = """
import json, numpy as np, mxnet as mx
from mxnet import autograd
case = json.load(open('case.json'))
x = mx.nd.array(np.load('x.npy'), dtype='float64')
rois = mx.nd.array(np.load('rois.npy'), dtype='float64')
trans = mx.nd.array(np.load('trans.npy'), dtype='float64')
g = mx.nd.array(np.load('g.npy'), dtype='float64')
x.attach_grad()
trans.attach_grad()
with autograd.record():
    y = mx.nd.contrib.DeformablePSROIPooling(
        x, rois, trans, spatial_scale=case['scale'],
        output_dim=case['classes'], group_size=case['k'],
        pooled_size=case['k'], part_size=case['k'],
        sample_per_part=case['samples'], trans_std=case['trans_std'],
        no_trans=False)
y.backward(g)
np.save('y.npy', y.asnumpy())
np.save('dx.npy', x.grad.asnumpy())
np.save('dtrans.npy', trans.grad.asnumpy())
"""


@pytest.mark.parametrize('groups', [1, 3])  # agnostic, class-specific
def test_deformable_legacy_matches_mxnet(tmp_path, groups):
    """``deform_ps_roi_pool(legacy=True)`` against MXNet's
    ``contrib.DeformablePSROIPooling`` (Deformable-ConvNets' kernel) in
    float64: output, gradient to the maps and to the offsets."""
    from rfcn_mm.ops import deform_ps_roi_pool
    rng = np.random.default_rng(groups)
    k, classes, height, width, scale = 3, 3, 11, 14, 1 / 8
    x = rng.standard_normal((2, classes * k * k, height, width))
    rois = make_rois(2, height, width, scale, num=30, seed=groups).numpy()
    trans = rng.uniform(-1.5, 1.5, (len(rois), 2 * groups, k, k))
    g = rng.standard_normal((len(rois), classes, k, k))
    for name, value in (('x', x), ('rois', rois), ('trans', trans),
                        ('g', g)):
        np.save(tmp_path / f'{name}.npy', value)
    (tmp_path / 'case.json').write_text(
        json.dumps(
            dict(k=k, scale=scale, classes=classes, samples=4,
                 trans_std=0.1)))
    run_mxnet(DEFORM_ORACLE, cwd=str(tmp_path))

    xt = torch.from_numpy(x).requires_grad_(True)
    tt = torch.from_numpy(trans).requires_grad_(True)
    out = deform_ps_roi_pool(
        xt, torch.from_numpy(rois), tt, k, scale, sample_per_part=4,
        trans_std=0.1, legacy=True)
    torch.testing.assert_close(out.detach().numpy(),
                               np.load(tmp_path / 'y.npy'))
    out.backward(torch.from_numpy(g))
    torch.testing.assert_close(xt.grad.numpy(), np.load(tmp_path / 'dx.npy'))
    torch.testing.assert_close(tt.grad.numpy(),
                               np.load(tmp_path / 'dtrans.npy'))
