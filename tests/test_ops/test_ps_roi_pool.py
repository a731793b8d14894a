import pytest
import torch
from helpers.roi_cases import (import_torchvision_ops, interior_integer_rois,
                               make_rois)

from rfcn_mm.ops import PSRoIPool, ps_roi_pool, ps_roi_pool_reference


def test_hand_computed_whole_map():
    # k = 2, one class: bin (i, j) averages block (i, j) of channel i*2+j
    x = torch.arange(4 * 16, dtype=torch.float32).view(1, 4, 4, 4)
    rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float32)
    out = ps_roi_pool(x, rois, 2, 1.0)
    expected = torch.tensor(
        [[x[0, 0, 0:2, 0:2].mean(), x[0, 1, 0:2, 2:4].mean()],
         [x[0, 2, 2:4, 0:2].mean(), x[0, 3, 2:4, 2:4].mean()]])
    torch.testing.assert_close(out[0, 0], expected)
    # written out: channel 0 block rows 0-1 cols 0-1 = (0+1+4+5)/4
    assert out[0, 0, 0, 0].item() == 2.5


def test_hand_computed_fractional_bins_and_scale():
    # RoI [1, 0, 6, 4) at scale 0.5 -> [0.5, 0, 3, 2) on the map; k = 2:
    # bin width 1.25: cols floor(0.5)=0..ceil(1.75)=2 and floor(1.75)=1..3;
    # bin height 1: rows 0..1 and 1..2 (Eq. 1, continuous corner)
    x = torch.arange(4 * 12, dtype=torch.float64).view(1, 4, 3, 4)
    rois = torch.tensor([[0, 1, 0, 6, 4]], dtype=torch.float64)
    out = ps_roi_pool(x, rois, 2, 0.5)[0, 0]
    assert out[0, 0] == x[0, 0, 0:1, 0:2].mean()
    assert out[0, 1] == x[0, 1, 0:1, 1:3].mean()
    assert out[1, 0] == x[0, 2, 1:2, 0:2].mean()
    assert out[1, 1] == x[0, 3, 1:2, 1:3].mean()


def test_empty_bins_are_zero_and_get_no_gradient():
    x = torch.randn(1, 9, 5, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 20, 20, 30, 30], [0, 2, 2, 2, 4]],
                        dtype=torch.float64)
    out = ps_roi_pool(x, rois, 3, 1.0)
    assert (out == 0).all()
    out.sum().backward()
    assert (x.grad == 0).all()


@pytest.mark.parametrize('k', [1, 3, 7])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('seed', [0, 1])
def test_matches_reference(k, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    batch, classes, h, w, scale = 2, 3, 11 + seed, 14, 1 / 8
    x = torch.randn(batch, classes * k * k, h, w, generator=g, dtype=dtype)
    rois = make_rois(batch, h, w, scale, num=20, seed=seed, dtype=dtype)
    x.requires_grad_(True)
    out = ps_roi_pool(x, rois, k, scale)
    ref = ps_roi_pool_reference(x, rois, k, scale)
    assert out.shape == (rois.size(0), classes, k, k)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(out, ref, **tol)
    grad_out = torch.randn(out.shape, generator=g, dtype=dtype)
    grad, = torch.autograd.grad(out, x, grad_out)
    grad_ref, = torch.autograd.grad(ref, x, grad_out)
    torch.testing.assert_close(grad, grad_ref, **tol)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('k', [1, 3])
def test_gradcheck_including_border_rois(seed, k):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(
        2,
        2 * k * k,
        6,
        7,
        generator=g,
        dtype=torch.float64,
        requires_grad=True)
    rois = make_rois(2, 6, 7, 0.5, num=14, seed=seed)
    assert torch.autograd.gradcheck(lambda t: ps_roi_pool(t, rois, k, 0.5),
                                    (x, ))


def test_rectangular_output_size():
    x = torch.randn(1, 2 * 6, 9, 9, dtype=torch.float64)
    rois = make_rois(1, 9, 9, 1.0, num=8)
    out = PSRoIPool((2, 3), 1.0)(x, rois)
    torch.testing.assert_close(out,
                               ps_roi_pool_reference(x, rois, (2, 3), 1.0))
    assert out.shape == (8, 2, 2, 3)


@pytest.mark.parametrize('k', [3, 7])
def test_matches_torchvision_on_interior_rois(k):
    ops = import_torchvision_ops()
    if ops is None:
        pytest.skip('torchvision does not import here')
    x = torch.randn(2, 4 * k * k, 20, 24, requires_grad=True)
    rois = interior_integer_rois(2, 20, 24, 1 / 16)
    out = ps_roi_pool(x, rois, k, 1 / 16)
    ref = ops.ps_roi_pool(x, rois, k, 1 / 16)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, g)[0],
        torch.autograd.grad(ref, x, g)[0],
        rtol=1e-5,
        atol=1e-5)
