"""Deformable PS RoI pooling against its pure-PyTorch reference (which
mirrors Deformable-ConvNets' DeformablePSROIPooling in legacy mode),
hand-computed cases, gradcheck and opcheck."""
import pytest
import torch
from helpers.roi_cases import make_rois
from torch.library import opcheck

from rfcn_mm.ops import (DeformPSRoIPool, deform_ps_roi_pool,
                         deform_ps_roi_pool_reference, ps_roi_align)


def inputs(k=3, groups=2, dtype=torch.float64, num=20, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4 * k * k, 9, 11, generator=g, dtype=dtype)
    rois = make_rois(2, 9, 11, scale, num=num, seed=seed, dtype=dtype)
    off = None if groups is None else torch.randn(
        rois.size(0), 2 * groups, k, k, generator=g, dtype=dtype)
    return x, rois, off


@pytest.mark.parametrize('legacy', [False, True])
@pytest.mark.parametrize('groups', [None, 1, 2, 4])
@pytest.mark.parametrize('k, samples', [(3, 2), (2, 4), (1, 1)])
def test_matches_the_reference_on_every_kind_of_roi(legacy, groups, k,
                                                    samples):
    x, rois, off = inputs(k, groups)
    args = (k, 0.5, None, samples, 0.1, legacy)
    want = deform_ps_roi_pool_reference(x, rois, off, *args)
    got = deform_ps_roi_pool(x, rois, off, *args)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_part_size_other_than_the_bins():
    x, rois, _ = inputs(4, None)
    off = torch.randn(rois.size(0), 2, 2, 2, dtype=torch.float64)
    args = (4, 0.5, 2, 2, 0.2, True)
    torch.testing.assert_close(
        deform_ps_roi_pool(x, rois, off, *args),
        deform_ps_roi_pool_reference(x, rois, off, *args))


def test_zero_offsets_are_ps_roi_align():
    x, rois, _ = inputs(3, None)
    zero = torch.zeros(rois.size(0), 2, 3, 3, dtype=torch.float64)
    for off in (None, zero):
        torch.testing.assert_close(
            deform_ps_roi_pool(x, rois, off, 3, 0.5, sample_per_part=3),
            ps_roi_align(x, rois, 3, 0.5, 3, True),
            rtol=1e-12,
            atol=1e-12)


def test_an_offset_of_one_bin_moves_the_output_by_one_bin():
    # a map that increases by 1 per pixel in x; a 6-pixel RoI, k = 3: bins
    # are 2 pixels wide, and an x offset of 1/3 (bin / RoI width) over
    # trans_std = 1 shifts every sample by 2 pixels
    x = torch.arange(16.).repeat(1, 9, 16, 1)
    rois = torch.tensor([[0., 2, 2, 8, 8]])
    off = torch.zeros(1, 2, 3, 3)
    off[0, 0] = 1 / 3
    base = deform_ps_roi_pool(x, rois, None, 3, trans_std=1.0)
    moved = deform_ps_roi_pool(x, rois, off, 3, trans_std=1.0)
    torch.testing.assert_close(moved[..., :2], base[..., 1:])
    torch.testing.assert_close(moved - base, torch.full_like(base, 2.))


def test_legacy_skips_samples_outside_the_map_instead_of_zero_padding():
    # one channel per bin (k = 1); a 2 x 2 map of ones; an RoI over the
    # map's right half and beyond: legacy samples at sub-bin corners x =
    # 0.5 + {0, 1.5} (rounded corners 1 .. 3 -> start 0.5, width 3), the
    # second one is outside [-0.5, 1.5] and is skipped, so the mean stays 1
    x = torch.ones(1, 1, 2, 2)
    rois = torch.tensor([[0., 1, 0, 3, 1]])
    got = deform_ps_roi_pool(
        x, rois, None, 1, sample_per_part=2, legacy=True)
    torch.testing.assert_close(got, torch.ones(1, 1, 1, 1))
    # continuous mode counts far samples as 0 (mmcv's rule): below 1
    cont = deform_ps_roi_pool(x, torch.tensor([[0., 1, 0, 5, 1]]), None, 1,
                              sample_per_part=2)
    assert float(cont) < 1
    # a bin with no sample on the map is 0
    far = torch.tensor([[0., 10, 10, 14, 14]])
    assert float(deform_ps_roi_pool(x, far, None, 1, legacy=True)) == 0


@pytest.mark.parametrize('legacy', [False, True])
def test_gradcheck_input_and_offsets_at_non_integer_positions(legacy):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2 * 9, 6, 7, generator=g, dtype=torch.float64)
    rois = torch.tensor([[0, 1.3, 2.1, 9.7, 10.2], [0, 3.3, 0.7, 12.1, 8.3]],
                        dtype=torch.float64)
    off = (torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64) *
           0.3).requires_grad_()
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: deform_ps_roi_pool(
            a, rois, b, 3, 0.5, sample_per_part=2, legacy=legacy), (x, off),
        eps=1e-6,
        atol=1e-5)


def test_offset_gradient_at_integer_positions_is_the_right_hand_one():
    """A row of values 0, 1, 4, 9 (x = 0 .. 3), k = 1, one sample, trans_std
    1 and an RoI one pixel wide, so that d out / d offset_x = d value / dx.
    Between pixels the derivative is the slope of the segment; on pixel 1
    it is the right-hand slope, 4 - 1 = 3 (the reference's floor/ceil
    neighbours would give 0 there)."""
    x = torch.tensor([0., 1, 4, 9], dtype=torch.float64).repeat(1, 1, 4, 1)

    def pool(rois, dx, legacy):
        off = torch.tensor([[[[dx]], [[0.]]]],
                           dtype=torch.float64,
                           requires_grad=True)
        out = deform_ps_roi_pool(
            x, torch.tensor([rois], dtype=torch.float64), off, 1,
            sample_per_part=1, trans_std=1.0, legacy=legacy)
        out.backward()
        return float(out), float(off.grad[0, 0])

    # continuous: start 1.5 - 0.5 = 1, width 1, sample at the centre 1.5
    assert pool([0., 1.5, 1, 2.5, 2], 0., False) == pytest.approx((2.5, 3))
    # legacy: start round(1.6) - 0.5 = 1.5, width 1, sample at the corner
    assert pool([0., 1.6, 1, 1.6, 1], 0., True) == pytest.approx((2.5, 3))
    # moved by half the RoI width onto pixel 1: value 1, right-hand slope 3
    assert pool([0., 1.6, 1, 1.6, 1], -0.5, True) == pytest.approx((1, 3))
    # and onto pixel 2 (from the left of it the slope would be 3): 5
    assert pool([0., 1.6, 1, 1.6, 1], 0.5, True) == pytest.approx((4, 5))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_reduced_precision_accumulates_in_float32(dtype):
    x, rois, off = inputs(3, 2, torch.float32)
    want = deform_ps_roi_pool(x, rois, off, 3, 0.5)
    got = deform_ps_roi_pool(x.to(dtype), rois.to(dtype), off.to(dtype), 3,
                             0.5)
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.05)


@pytest.mark.parametrize('legacy', [False, True])
def test_opcheck(legacy):
    x, rois, off = inputs(3, 2, torch.float64, num=12)
    x.requires_grad_()
    off.requires_grad_()
    args = (3, 3, 0.5, 3, 3, 2, 0.1, legacy)
    opcheck(torch.ops.rfcn_mm.deform_ps_roi_pool.default,
            (x, rois, off, *args))
    opcheck(torch.ops.rfcn_mm.deform_ps_roi_pool.default,
            (x, rois, None, *args))


@pytest.mark.parametrize('legacy', [False, True])
@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_a_non_finite_offset_makes_its_bins_nan_not_zero(legacy, bad):
    """A NaN or infinite offset must not pool 0 with zero gradient, which
    no loss check would ever see: the bins that read it are NaN (as in the
    reference), every other bin is unchanged, and the gradients stay
    finite (the NaN bins pass none)."""
    x, rois, off = inputs(3, groups=2, dtype=torch.float64, num=6)
    bad_off = off.clone()
    bad_off[2, 1, 0, 1] = bad  # RoI 2, group 0's y offset, cell (0, 1)
    args = (3, 0.5, None, 2, 0.1, legacy)
    got = deform_ps_roi_pool(x, rois, bad_off, *args)
    want = deform_ps_roi_pool_reference(x, rois, bad_off, *args)
    torch.testing.assert_close(got, want, equal_nan=True)
    nan = torch.isnan(got)
    expected = torch.zeros_like(nan)
    expected[2, :2, 0, 1] = True  # group 0 = output channels 0 and 1
    assert torch.equal(nan, expected)
    clean = deform_ps_roi_pool(x, rois, off, *args)
    assert torch.equal(got[~nan], clean[~nan])
    xg = x.clone().requires_grad_()
    og = bad_off.clone().requires_grad_()
    out = deform_ps_roi_pool(xg, rois, og, *args)
    out.backward(torch.where(torch.isnan(out), 0., 1.))
    assert torch.isfinite(xg.grad).all() and torch.isfinite(og.grad).all()


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(offset=torch.zeros(5, 4, 3, 3)), ValueError,
     r'offset must be shaped \(R, 2 \* groups, part_h, part_w\) = '
     r'\(6, 2 \* groups, 3, 3\), got shape \[5, 4, 3, 3\]'),
    (dict(offset=torch.zeros(6, 6, 3, 3)), ValueError,
     r'offset groups \(3\) must divide the output channels \(4\)'),
    (dict(offset=torch.zeros(6, 2, 2, 2)), ValueError, 'offset must be'),
    (dict(part_size=0), ValueError, 'part_size must be positive'),
    (dict(sample_per_part=0), ValueError, 'sample_per_part must be'),
    (dict(sample_per_part=65), ValueError,
     r'sample_per_part must be at most 64 \(64 x 64 samples per bin\), '
     'got 65'),
    (dict(trans_std=float('nan')), ValueError, 'trans_std must be finite'),
    (dict(offset=torch.zeros(6, 2, 3, 3).double()), TypeError,
     'input and offset must have the same dtype'),
])
def test_bad_arguments_are_named(kwargs, error, match):
    x = torch.randn(2, 36, 9, 11)
    rois = make_rois(2, 9, 11, 0.5, num=6, dtype=torch.float32)
    kwargs = dict(dict(offset=None), **kwargs)
    offset = kwargs.pop('offset')
    with pytest.raises(error, match=match):
        deform_ps_roi_pool(x, rois, offset, 3, 0.5, **kwargs)


def test_kernel_and_fake_kernel_refuse_with_the_same_words():
    from torch._subclasses.fake_tensor import FakeTensorMode
    x = torch.randn(2, 36, 9, 11)
    rois = make_rois(2, 9, 11, 0.5, num=6, dtype=torch.float32)
    bad = torch.zeros(6, 6, 3, 3)
    op = torch.ops.rfcn_mm.deform_ps_roi_pool
    args = (3, 3, 0.5, 3, 3, 2, 0.1, False)
    with pytest.raises(ValueError) as real:
        op(x, rois, bad, *args)
    with FakeTensorMode() as mode:
        fx, fr, fb = (mode.from_tensor(t) for t in (x, rois, bad))
        with pytest.raises(ValueError) as fake:
            op(fx, fr, fb, *args)
    assert str(real.value).splitlines()[0] == str(
        fake.value).splitlines()[0]


def test_module_and_compile():
    x, rois, off = inputs(3, 2, torch.float32)
    pool = DeformPSRoIPool(3, 0.5, sample_per_part=2, check_batch_idx=False)
    assert 'sample_per_part=2' in repr(pool)
    compiled = torch.compile(pool, fullgraph=True, backend='aot_eager')
    torch.testing.assert_close(compiled(x, rois, off), pool(x, rois, off))
    with pytest.raises(ValueError, match='must be positive'):
        DeformPSRoIPool(3, 0.5, sample_per_part=0)


@pytest.mark.cuda
@pytest.mark.parametrize('legacy', [False, True])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cuda_matches_cpu_forward_and_backward(legacy, dtype):
    x, rois, off = inputs(3, 2, dtype)
    grads = []
    for device in ('cpu', 'cuda'):
        xd = x.to(device).requires_grad_()
        od = off.to(device).requires_grad_()
        out = deform_ps_roi_pool(xd, rois.to(device), od, 3, 0.5,
                                 sample_per_part=2, legacy=legacy)
        out.backward(torch.ones_like(out))
        grads.append((out.detach().cpu(), xd.grad.cpu(), od.grad.cpu()))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else {}
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, **tol)


@pytest.mark.cuda
def test_opcheck_cuda():
    x, rois, off = inputs(3, 2, torch.float64, num=12)
    args = (3, 3, 0.5, 3, 3, 2, 0.1, False)
    opcheck(torch.ops.rfcn_mm.deform_ps_roi_pool.default,
            (x.cuda().requires_grad_(), rois.cuda(),
             off.cuda().requires_grad_(), *args))
