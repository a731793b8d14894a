"""RoIs that no detector should produce, but a kernel must survive: NaN and
infinite coordinates (refused by the checks; zeros, never an out-of-bounds
read, with the checks off), finite coordinates far beyond the int range
(the reference's answer), and huge RoIs with adaptive sampling (in-map
samples only, so no hang). Bad scalar arguments get named errors."""
import functools
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers.roi_cases import ROOT, TEST_OPS_DIR, TESTS_DIR

from rfcn_mm.ops import (PSRoIAlign, PSRoIPool, ps_roi_align,
                         ps_roi_align_reference, ps_roi_pool,
                         ps_roi_pool_reference)

OPS = {
    'pool': ps_roi_pool,
    'align': functools.partial(ps_roi_align, sampling_ratio=2),
    'align_adaptive': functools.partial(ps_roi_align, sampling_ratio=0),
}
NON_FINITE = [float('nan'), float('inf'), -float('inf')]


def _x(k=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 2 * k * k, 8, 8, generator=g, dtype=dtype)


def _rois(dtype=torch.float32):
    return torch.tensor([[0, 1, 1, 6, 6], [1, 0, 2, 5, 7], [0, 2, 0, 7, 3]],
                        dtype=dtype)


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('value', NON_FINITE)
@pytest.mark.parametrize('column', [1, 2, 3, 4])
def test_non_finite_coordinates_are_refused(name, value, column):
    rois = _rois()
    rois[1, column] = value
    with pytest.raises(ValueError, match=r'non-finite .* row 1'):
        OPS[name](_x(), rois, 3)


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('value', NON_FINITE)
def test_non_finite_batch_index_is_refused(name, value):
    rois = _rois()
    rois[2, 0] = value
    with pytest.raises(ValueError, match='batch indices that do not exist'):
        OPS[name](_x(), rois, 3)


def test_unchecked_non_finite_rois_give_zero_in_a_child():
    """With the checks off, every non-finite RoI pools 0 and passes no
    gradient, the others are unchanged. In a child process: before the
    fix, NaN made ps_roi_align read out of bounds (SIGSEGV)."""
    code = f'''
import sys
sys.path[:0] = [{TEST_OPS_DIR!r}, {TESTS_DIR!r}, {ROOT!r}]
import torch
from test_ps_roi_bad_rois import OPS, NON_FINITE, _x, _rois
for name, op in sorted(OPS.items()):
    for value in NON_FINITE:
        for column in range(5):
            rois = _rois().repeat(2, 1)
            rois[4, column] = value
            x = _x().requires_grad_(True)
            out = op(x, rois, 3, check_batch_idx=False)
            out.backward(torch.ones_like(out))
            ref_x = _x().requires_grad_(True)
            keep = [0, 1, 2, 3, 5]
            ref = op(ref_x, rois[keep], 3)
            ref.backward(torch.ones_like(ref))
            ok = (bool((out[4] == 0).all()) and
                  torch.equal(out[keep], ref) and
                  torch.allclose(x.grad, ref_x.grad))
            print(name, value, column, 'ok' if ok else 'WRONG')
'''
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stdout.splitlines()
    assert len(lines) == len(OPS) * len(NON_FINITE) * 5
    assert all(line.endswith(' ok') for line in lines), lines


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_pool_beyond_the_int_range_matches_the_reference(dtype):
    """Bins with edges past 2^31 pixels: the whole map (its mean), part of
    it, or nothing, as the reference (Python integers) says."""
    x = _x(dtype=dtype)
    rois = torch.tensor(
        [[0, 0, 0, 1e10, 1e10], [1, -1e10, -1e10, 1e10, 1e10],
         [0, 3, 2, 6.6e9, 7e9], [1, 7e9, 7e9, 9e9, 9e9],
         [0, -9e9, -9e9, -7e9, -7e9], [1, -3e12, 2, 3e12, 5]],
        dtype=dtype)
    got = ps_roi_pool(x, rois, 3)
    want = ps_roi_pool_reference(x, rois, 3)
    torch.testing.assert_close(got, want)
    # the first RoI's bin (0, 0) holds the whole map
    torch.testing.assert_close(got[0, :, 0, 0],
                               x[0, 0::9].mean((1, 2)).to(dtype))
    assert (got[3] == 0).all() and (got[4] == 0).all()


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 40])
def test_align_with_most_samples_off_the_map_matches_the_reference(
        aligned, sampling_ratio):
    """Only samples on the map are visited; the others still count in the
    average, exactly as in the reference, which visits them all."""
    x = _x(dtype=torch.float64)
    rois = torch.tensor([[0, -50, -40, 70, 60], [1, 5, -90, 7, 100],
                         [0, -200, 3, -100, 5], [1, 2, 3, 90, 4]],
                        dtype=torch.float64)
    got = ps_roi_align(x, rois, 3, 1.0, sampling_ratio, aligned)
    want = ps_roi_align_reference(x, rois, 3, 1.0, sampling_ratio, aligned)
    torch.testing.assert_close(got, want)


def _in_map_samples(start, roi, k, size):
    """How many of each bin's adaptive samples along one axis lie in
    [-1, size], counted with numpy in float64 (the kernels' formula) over a
    window around the map found by division (the op finds it by binary
    search)."""
    bin_size = roi / k
    grid = math.ceil(bin_size)
    step = bin_size / grid
    counts = []
    for idx in range(k):
        first = start + idx * bin_size
        lo = max(int(math.floor((-1 - first) / step - 0.5)) - 8, 0)
        hi = min(int(math.ceil((size - first) / step - 0.5)) + 8, grid)
        s = np.arange(lo, max(hi, lo), dtype=np.float64)
        pos = first + (s + 0.5) * bin_size / grid
        counts.append(int(((pos >= -1) & (pos <= size)).sum()))
    return counts, grid


def test_huge_adaptive_align_is_fast_and_exact_in_a_child():
    """A 1e9-pixel RoI with sampling_ratio=0 has 1e18 samples per bin; the
    op visits the few on the map (before the fix it ran for hours). On a
    constant map each visited sample contributes the constant, so a bin is
    c * (samples on the map) / (all samples)."""
    code = f'''
import sys
sys.path[:0] = [{TEST_OPS_DIR!r}, {TESTS_DIR!r}, {ROOT!r}]
import torch
from rfcn_mm.ops import ps_roi_align
x = torch.full((1, 1, 8, 8), 3.0, dtype=torch.float64)
for roi in ([0., 0, 0, 1e9, 1e9], [0., -1e9, 0, 1e9, 5e8]):
    out = ps_roi_align(x, torch.tensor([roi], dtype=torch.float64), 1,
                       1.0, 0, True)
    print(repr(float(out)))
x32 = torch.randn(1, 9, 8, 8)
print(float(ps_roi_align(x32, torch.tensor([[0., 0, 0, 1e9, 1e9]]), 3,
                         1.0, 0).abs().max()))
'''
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = [float(v) for v in proc.stdout.split()]
    boxes = ([0, 0, 1e9, 1e9], [-1e9, 0, 1e9, 5e8])
    for value, (x1, y1, x2, y2) in zip(got, boxes):
        (nx, ), gx = _in_map_samples(x1 - 0.5, x2 - x1, 1, 8)
        (ny, ), gy = _in_map_samples(y1 - 0.5, y2 - y1, 1, 8)
        assert nx > 0 and ny > 0
        assert value == pytest.approx(3.0 * nx * ny / (gx * gy), rel=1e-9)
    assert math.isfinite(got[2]) and got[2] < 1e-12


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('scale', [float('inf'), float('nan'), 0., -1.])
def test_non_finite_or_non_positive_spatial_scale(name, scale):
    with pytest.raises(ValueError,
                       match='spatial_scale must be a finite positive'):
        OPS[name](_x(), _rois(), 3, scale)


@pytest.mark.parametrize('name', sorted(OPS))
def test_integral_float_output_size_is_accepted(name):
    torch.testing.assert_close(OPS[name](_x(), _rois(), 3.0),
                               OPS[name](_x(), _rois(), 3))
    torch.testing.assert_close(OPS[name](_x(), _rois(), (3.0, 3)),
                               OPS[name](_x(), _rois(), 3))


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('size', [2.5, '3', None, (3, ), (3, 3, 3)])
def test_bad_output_size_is_named(name, size):
    with pytest.raises((TypeError, ValueError), match='output_size'):
        OPS[name](_x(), _rois(), size)


def test_bad_sampling_ratio_and_scale_types_are_named():
    with pytest.raises(TypeError, match='sampling_ratio must be an integer'):
        ps_roi_align(_x(), _rois(), 3, 1.0, 2.5)
    with pytest.raises(TypeError, match='spatial_scale must be a number'):
        ps_roi_pool(_x(), _rois(), 3, '0.5')
    torch.testing.assert_close(ps_roi_align(_x(), _rois(), 3, 1.0, 2.0),
                               ps_roi_align(_x(), _rois(), 3, 1.0, 2))


@pytest.mark.parametrize('module', [PSRoIPool, PSRoIAlign])
def test_modules_accept_integral_floats_and_name_bad_arguments(module):
    assert module(3.0, 0.5).output_size == (3, 3)
    with pytest.raises(TypeError, match='output_size'):
        module(2.5, 0.5)
    with pytest.raises(ValueError, match='spatial_scale'):
        module(3, float('inf'))
