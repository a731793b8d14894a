"""PS RoI pooling in standard ops (summed-area table) against the kernel."""
import pytest
import torch
from helpers.roi_cases import make_rois

from rfcn_mm.deploy import ps_roi_pool_by_summed_area
from rfcn_mm.ops import ps_roi_pool


@pytest.mark.parametrize('k', [1, 3, 7])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('seed', [0, 1])
def test_matches_the_kernel_on_every_kind_of_roi(k, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3 * k * k, 17, 23, generator=g, dtype=dtype) * 5
    rois = make_rois(2, 17, 23, 0.25, num=40, seed=seed, dtype=dtype)
    want = ps_roi_pool(x, rois, k, 0.25)
    got = ps_roi_pool_by_summed_area(x, rois, k, k, 0.25)
    # the same rectangles, summed in another order (float64 table)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    assert (got[want == 0] == 0).all()


def test_bad_rois_pool_zero_as_in_the_kernel():
    x = torch.rand(2, 9, 8, 8)
    rois = torch.tensor([[-1., 0, 0, 8, 8], [2., 0, 0, 8, 8],
                         [0., float('nan'), 0, 8, 8],
                         [1., 0, 0, float('inf'), 8], [1., 0, 0, 8, 8]])
    want = ps_roi_pool(x, rois, 3, 1.0, check_batch_idx=False)
    got = ps_roi_pool_by_summed_area(x, rois, 3, 3, 1.0)
    torch.testing.assert_close(got, want)
    assert (got[:4] == 0).all() and (got[4] != 0).any()


def test_rectangular_grid_and_no_roi():
    x = torch.rand(1, 2 * 6, 9, 9)
    rois = make_rois(1, 9, 9, 1.0, num=12, dtype=torch.float32)
    torch.testing.assert_close(
        ps_roi_pool_by_summed_area(x, rois, 2, 3, 1.0),
        ps_roi_pool(x, rois, (2, 3), 1.0))
    assert ps_roi_pool_by_summed_area(x, rois[:0], 2, 3, 1.0).shape == (0, 2,
                                                                        2, 3)
