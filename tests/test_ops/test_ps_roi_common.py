"""Behaviour both PS RoI ops share: argument errors, empty inputs,
non-contiguous inputs, reduced precision, and CUDA parity."""
import functools

import pytest
import torch
from helpers.roi_cases import make_rois

from rfcn_mm.ops import (PSRoIAlign, PSRoIPool, ps_roi_align,
                         ps_roi_align_reference, ps_roi_pool,
                         ps_roi_pool_reference)

OPS = {
    'pool': (ps_roi_pool, ps_roi_pool_reference),
    'align': (functools.partial(ps_roi_align, sampling_ratio=2),
              functools.partial(ps_roi_align_reference, sampling_ratio=2)),
}


@pytest.fixture(params=sorted(OPS))
def op(request):
    return OPS[request.param][0]


def _inputs(k=3, dtype=torch.float32, device='cpu', batch=2, num=12):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3 * k * k, 10, 13, generator=g, dtype=dtype)
    rois = make_rois(batch, 10, 13, 0.5, num=num, dtype=dtype)
    return x.to(device), rois.to(device)


def test_channels_not_divisible(op):
    x, rois = _inputs()
    with pytest.raises(
            ValueError,
            match=r'input channels \(27\) must be '
            r'divisible by .*\(4\)'):
        op(x, rois, 2, 0.5)


@pytest.mark.parametrize('shape', [(4, 4), (5, ), (2, 5, 1)])
def test_rois_not_n_by_5(op, shape):
    x, _ = _inputs()
    with pytest.raises(ValueError, match=r'rois must be shaped \(N, 5\)'):
        op(x, torch.zeros(shape), 3, 0.5)


def test_input_not_4d(op):
    _, rois = _inputs()
    with pytest.raises(ValueError, match='input must be a 4-D tensor'):
        op(torch.zeros(27, 10, 13), rois, 3, 0.5)


@pytest.mark.parametrize('bad', [2., -1., 0.5])
def test_batch_index_that_does_not_exist(op, bad):
    x, rois = _inputs()
    rois[3, 0] = bad
    with pytest.raises(
            ValueError,
            match='batch indices that do not exist '
            'in an input of batch size 2'):
        op(x, rois, 3, 0.5)


@pytest.mark.parametrize(
    'device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
@pytest.mark.parametrize('bad', [2., -1.])
def test_unchecked_batch_index_gives_zero_and_no_gradient(op, bad, device):
    # enough RoIs for the CUDA plane kernels (4 x 80 >= 2 x 10 x 13 pixels)
    x, rois = (t.to(device) for t in _inputs(num=80))
    rois[3, 0] = bad
    keep = [i for i in range(len(rois)) if i != 3]
    x.requires_grad_(True)
    out = op(x, rois, 3, 0.5, check_batch_idx=False)
    assert (out[3] == 0).all()
    out.sum().backward()
    # oracle: the same RoIs without the bad one
    x2 = x.detach().clone().requires_grad_(True)
    want = op(x2, rois[keep], 3, 0.5)
    want.sum().backward()
    torch.testing.assert_close(out[keep], want)
    torch.testing.assert_close(x.grad, x2.grad)


def test_modules_pass_check_batch_idx():
    x, rois = _inputs()
    rois[0, 0] = 5.
    for module in (PSRoIPool(3, 0.5, check_batch_idx=False),
                   PSRoIAlign(3, 0.5, check_batch_idx=False)):
        assert (module(x, rois)[0] == 0).all()
    for module in (PSRoIPool(3, 0.5), PSRoIAlign(3, 0.5)):
        with pytest.raises(ValueError, match=r'batch size 2: \[5.0\]'):
            module(x, rois)


def test_dtype_mismatch(op):
    x, rois = _inputs()
    with pytest.raises(TypeError, match='same dtype'):
        op(x, rois.double(), 3, 0.5)


def test_integer_input(op):
    x, rois = _inputs()
    with pytest.raises(TypeError, match='floating point'):
        op(x.long(), rois, 3, 0.5)


@pytest.mark.parametrize('size', [0, -3, (3, 0)])
def test_non_positive_output_size(op, size):
    x, rois = _inputs()
    with pytest.raises(ValueError, match='output_size must be positive'):
        op(x, rois, size, 0.5)


@pytest.mark.parametrize('scale', [0., -0.5, float('nan')])
def test_non_positive_spatial_scale(op, scale):
    x, rois = _inputs()
    with pytest.raises(ValueError,
                       match='spatial_scale must be a finite positive'):
        op(x, rois, 3, scale)


def test_negative_sampling_ratio():
    x, rois = _inputs()
    with pytest.raises(ValueError, match='sampling_ratio must be >= 0'):
        ps_roi_align(x, rois, 3, 0.5, -1)


@pytest.mark.parametrize('module', [PSRoIPool, PSRoIAlign])
def test_modules_validate_eagerly(module):
    with pytest.raises(ValueError, match='output_size'):
        module(0, 0.5)
    with pytest.raises(ValueError, match='spatial_scale'):
        module(3, 0.)


def test_zero_rois_give_empty_output_and_zero_grad(op):
    x, _ = _inputs()
    x.requires_grad_(True)
    out = op(x, torch.zeros(0, 5), 3, 0.5)
    assert out.shape == (0, 3, 3, 3)
    out.sum().backward()
    assert x.grad.shape == x.shape and (x.grad == 0).all()


@pytest.mark.parametrize('name', sorted(OPS))
def test_non_contiguous_inputs(name):
    fn, _ = OPS[name]
    x, rois = _inputs()
    ref = fn(x, rois, 3, 0.5)
    # channels_last memory, a transposed view, and strided RoIs
    x_cl = x.to(memory_format=torch.channels_last)
    x_t = x.transpose(2, 3).contiguous().transpose(2, 3)
    rois_strided = torch.cat([rois, rois], 1)[:, ::2]
    rois_nc = torch.zeros(rois.size(0), 10)
    rois_nc[:, ::2] = rois
    rois_nc = rois_nc[:, ::2]
    assert not x_t.is_contiguous() and not rois_nc.is_contiguous()
    for xi in (x_cl, x_t):
        torch.testing.assert_close(fn(xi, rois, 3, 0.5), ref)
    torch.testing.assert_close(fn(x, rois_nc, 3, 0.5), ref)
    assert rois_strided.shape == rois.shape
    # gradients of a non-contiguous input
    xg = x_t.clone().requires_grad_(True)
    fn(xg, rois, 3, 0.5).sum().backward()
    xr = x.clone().requires_grad_(True)
    fn(xr, rois, 3, 0.5).sum().backward()
    torch.testing.assert_close(xg.grad, xr.grad)


def test_inputs_are_not_mutated(op):
    x, rois = _inputs()
    x0, rois0 = x.clone(), rois.clone()
    op(x, rois, 3, 0.5)
    assert torch.equal(x, x0) and torch.equal(rois, rois0)


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_on_cpu_within_tolerance_of_float32(name, dtype):
    # values and coordinates are cast once; the op accumulates in float32
    fn, _ = OPS[name]
    x, rois = _inputs(dtype=torch.float32)
    rois = rois.to(dtype).float()  # same coordinates in both runs
    ref = fn(x.to(dtype).float(), rois, 3, 0.5)
    out = fn(x.to(dtype), rois.to(dtype), 3, 0.5)
    assert out.dtype == dtype
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)


@pytest.mark.cuda
@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('k', [1, 3, 7])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cuda_matches_cpu(name, k, dtype):
    fn, _ = OPS[name]
    x, rois = _inputs(k=k, dtype=dtype, num=24)
    xc = x.cuda().requires_grad_(True)
    x = x.requires_grad_(True)
    out = fn(x, rois, k, 0.5)
    out_c = fn(xc, rois.cuda(), k, 0.5)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(out_c.cpu(), out, **tol)
    g = torch.randn_like(out)
    torch.testing.assert_close(
        torch.autograd.grad(out_c, xc, g.cuda())[0].cpu(),
        torch.autograd.grad(out, x, g)[0], **tol)


@pytest.mark.cuda
@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize(
    'batch,height,width,num,dtype',
    [
        (1, 20, 25, 600, torch.float64),  # shared-memory plane kernels
        (1, 38, 63, 300, torch.float64),  # few RoIs: global forward
        (2, 100, 126, 64, torch.float32),  # plane > 48 KB: global kernels
        (2, 20, 25, 8200, torch.float32),  # many images x RoIs: global
    ])
def test_cuda_kernel_paths_match_cpu(name, batch, height, width, num, dtype):
    fn, _ = OPS[name]
    g = torch.Generator().manual_seed(1)
    k = 3
    x = torch.randn(batch, 2 * k * k, height, width, generator=g, dtype=dtype)
    rois = make_rois(batch, height, width, 1 / 16, num=num, dtype=dtype)
    grad_out = torch.randn(num, 2, k, k, generator=g, dtype=dtype)
    x, xc = x.requires_grad_(True), x.cuda().requires_grad_(True)
    out, out_c = fn(x, rois, k, 1 / 16), fn(xc, rois.cuda(), k, 1 / 16)
    tol = {} if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out_c.cpu(), out, **tol)
    want = torch.autograd.grad(out, x, grad_out)
    got = torch.autograd.grad(out_c, xc, grad_out.cuda())
    torch.testing.assert_close(got[0].cpu(), want[0], **tol)


@pytest.mark.cuda
@pytest.mark.parametrize('name', sorted(OPS))
def test_cuda_gradcheck(name):
    fn, _ = OPS[name]
    x, rois = _inputs(dtype=torch.float64, num=14)
    x = x.cuda().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: fn(t, rois.cuda(), 3, 0.5),
                                    (x, ))


@pytest.mark.cuda
@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_cuda_low_precision_within_tolerance_of_float32(name, dtype):
    fn, _ = OPS[name]
    x, rois = _inputs()
    rois = rois.to(dtype).float().cuda()
    x = x.cuda().to(dtype)
    ref = fn(x.float().requires_grad_(True), rois, 3, 0.5)
    xl = x.clone().requires_grad_(True)
    out = fn(xl, rois.to(dtype), 3, 0.5)
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)
    out.float().sum().backward()
    assert xl.grad.dtype == dtype and torch.isfinite(xl.grad.float()).all()


@pytest.mark.cuda
def test_cuda_device_mismatch(op):
    x, rois = _inputs()
    with pytest.raises(ValueError, match='same device'):
        op(x.cuda(), rois, 3, 0.5)


@pytest.mark.cuda
def test_cuda_autocast(op):
    x, rois = _inputs()
    with torch.autocast('cuda', dtype=torch.float16):
        feats = torch.nn.functional.conv2d(
            x.cuda(),
            torch.eye(27, device='cuda')[:, :, None, None])
        out = op(feats, rois.cuda().to(feats.dtype), 3, 0.5)
    assert out.dtype == torch.float16
