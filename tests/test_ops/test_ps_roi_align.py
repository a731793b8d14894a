import pytest
import torch
from helpers.roi_cases import (import_torchvision_ops, interior_integer_rois,
                               make_rois)

from rfcn_mm.ops import PSRoIAlign, ps_roi_align, ps_roi_align_reference


def test_hand_computed_linear_map():
    # On a map f(y, x) = 10 y + x bilinear sampling is exact, so each bin is
    # f at the mean of its sample points. RoI [0, 0, 4, 4), aligned (-0.5),
    # k = 2, 2x2 samples: bin (0, 0) samples x, y in {-0.5+0.5, -0.5+1.5}
    # = {0, 1} -> mean (0.5, 0.5) -> f = 5.5; bin (1, 1) samples {2, 3}
    # -> f = 27.5. Bins read their own channel, hence the channel offsets.
    ys, xs = torch.meshgrid(torch.arange(6.), torch.arange(6.), indexing='ij')
    f = 10 * ys + xs
    x = torch.stack([f + 100 * c for c in range(4)])[None]
    rois = torch.tensor([[0., 0., 0., 4., 4.]])
    out = ps_roi_align(x, rois, 2, 1.0, sampling_ratio=2)[0, 0]
    expected = torch.tensor([[5.5, 7.5 + 100], [25.5 + 200, 27.5 + 300]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('k', [1, 3, 7])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('sampling_ratio,aligned', [(2, True), (0, True),
                                                    (1, False)])
def test_matches_reference(k, dtype, sampling_ratio, aligned):
    g = torch.Generator().manual_seed(k)
    batch, classes, h, w, scale = 2, 2, 9, 12, 1 / 4
    x = torch.randn(batch, classes * k * k, h, w, generator=g, dtype=dtype)
    rois = make_rois(batch, h, w, scale, num=16, seed=k, dtype=dtype)
    x.requires_grad_(True)
    out = ps_roi_align(x, rois, k, scale, sampling_ratio, aligned)
    ref = ps_roi_align_reference(x, rois, k, scale, sampling_ratio, aligned)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(out, ref, **tol)
    grad_out = torch.randn(out.shape, generator=g, dtype=dtype)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, grad_out)[0],
        torch.autograd.grad(ref, x, grad_out)[0], **tol)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_gradcheck_including_border_rois(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(
        2, 2 * 9, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    rois = make_rois(2, 6, 7, 0.5, num=14, seed=seed)
    assert torch.autograd.gradcheck(lambda t: ps_roi_align(t, rois, 3, 0.5, 2),
                                    (x, ))


def test_module_repr_and_args():
    m = PSRoIAlign(7, 1 / 16, sampling_ratio=0)
    assert 'output_size=(7, 7)' in repr(m) and 'sampling_ratio=0' in repr(m)
    with pytest.raises(ValueError, match='sampling_ratio'):
        PSRoIAlign(7, 1 / 16, sampling_ratio=-1)


@pytest.mark.parametrize('k', [3, 7])
def test_matches_torchvision_on_interior_rois(k):
    ops = import_torchvision_ops()
    if ops is None:
        pytest.skip('torchvision does not import here')
    x = torch.randn(2, 4 * k * k, 20, 24, requires_grad=True)
    rois = interior_integer_rois(2, 20, 24, 1 / 16)
    out = ps_roi_align(x, rois, k, 1 / 16, sampling_ratio=2)
    ref = ops.ps_roi_align(x, rois, k, 1 / 16, sampling_ratio=2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
