"""PS RoI Align with the reference's coordinates (``legacy=True``):
hand-computed cases, the pure-PyTorch reference, gradcheck, the module,
torch.export, and MXNet 1.9.1's ``contrib.DeformablePSROIPooling`` without
offsets (Deformable-ConvNets' kernel) in float64, forward and gradient."""
import json

import numpy as np
import pytest
import torch
from helpers.mxnet_oracle import run_mxnet
from helpers.roi_cases import make_rois

from rfcn_mm.ops import PSRoIAlign, ps_roi_align, ps_roi_align_reference


def _linear_map(height=5, width=5):
    """One channel whose value at (y, x) is 5y + x: bilinear reads of it
    are exact, so every sample's value is known by hand."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64),
                          indexing='ij')
    return (5 * y + x)[None, None]


def test_hand_computed_rounding_shift_and_corner_samples():
    """RoI (0.4, 0.6, 2.5, 3.49), k = 1, 2 samples per axis: corners round
    to (0, 1, 3, 3), +1 on the end, -0.5 shift: x in [-0.5, 3.5), y in
    [0.5, 3.5); samples at sub-bin corners x = -0.5 (clamped to 0), 1.5 and
    y = 0.5, 2.0; values 2.5, 4.0, 10.0, 11.5."""
    rois = torch.tensor([[0, 0.4, 0.6, 2.5, 3.49]], dtype=torch.float64)
    out = ps_roi_align(_linear_map(), rois, 1, 1.0, 2, legacy=True)
    assert out.item() == (2.5 + 4.0 + 10.0 + 11.5) / 4
    # the default mode samples other points of the same box
    assert ps_roi_align(_linear_map(), rois, 1, 1.0, 2).item() != 7.0


def test_samples_off_the_map_are_skipped_not_zero():
    """RoI (3, 0, 7, 0) on a 5 x 5 map: x in [2.5, 7.5) samples 2.5 and
    5.0 (beyond W - 0.5 = 4.5: skipped), y in [-0.5, 0.5) samples -0.5 and
    0 (both row 0): the bin is the mean of the two kept reads, 2.5."""
    rois = torch.tensor([[0, 3, 0, 7, 0]], dtype=torch.float64)
    out = ps_roi_align(_linear_map(), rois, 1, 1.0, 2, legacy=True)
    assert out.item() == 2.5


@pytest.mark.parametrize('k, sampling_ratio', [(1, 1), (3, 2), (7, 4)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_matches_reference(k, sampling_ratio, dtype):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(2, 3 * k * k, 12, 15, generator=g, dtype=dtype)
    # the pure-PyTorch reference loops over samples: fewer RoIs at k = 7
    rois = make_rois(2, 12, 15, 1 / 8, num=24 if k < 7 else 6, seed=k,
                     dtype=dtype)
    x.requires_grad_(True)
    out = ps_roi_align(x, rois, k, 1 / 8, sampling_ratio, legacy=True)
    ref = ps_roi_align_reference(x, rois, k, 1 / 8, sampling_ratio,
                                 legacy=True)
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
        lambda t: ps_roi_align(t, rois, 3, 0.5, 2, legacy=True), (x, ))


def test_module_and_arguments():
    x = torch.randn(2, 2 * 49, 10, 12, dtype=torch.float64)
    rois = make_rois(2, 10, 12, 1 / 16, num=30, seed=5)
    layer = PSRoIAlign(7, 1 / 16, sampling_ratio=4, legacy=True)
    assert 'legacy=True' in repr(layer)
    torch.testing.assert_close(
        layer(x, rois), ps_roi_align(x, rois, 7, 1 / 16, 4, legacy=True))
    with pytest.raises(ValueError, match='fixed sampling_ratio'):
        PSRoIAlign(7, 1 / 16, sampling_ratio=0, legacy=True)
    with pytest.raises(ValueError, match='fixed sampling_ratio'):
        ps_roi_align(x, rois, 7, 1 / 16, 0, legacy=True)


def test_torch_export():
    x = torch.randn(1, 2 * 9, 8, 8)
    rois = make_rois(1, 8, 8, 0.5, num=5, seed=1, dtype=torch.float32)
    layer = PSRoIAlign(3, 0.5, sampling_ratio=2, legacy=True,
                       check_batch_idx=False)
    program = torch.export.export(layer, (x, rois))
    torch.testing.assert_close(program.module()(x, rois), layer(x, rois))


ORACLE = """
import json, numpy as np, mxnet as mx
from mxnet import autograd
case = json.load(open('case.json'))
x = mx.nd.array(np.load('x.npy'), dtype='float64')
rois = mx.nd.array(np.load('rois.npy'), dtype='float64')
g = mx.nd.array(np.load('g.npy'), dtype='float64')
x.attach_grad()
with autograd.record():
    y = mx.nd.contrib.DeformablePSROIPooling(
        data=x, rois=rois, spatial_scale=case['scale'],
        output_dim=case['classes'], group_size=case['k'],
        pooled_size=case['k'], sample_per_part=case['samples'],
        no_trans=True)
y.backward(g)
np.save('y.npy', y.asnumpy())
np.save('dx.npy', x.grad.asnumpy())
"""


@pytest.mark.parametrize('k, samples, scale', [(3, 2, 1 / 16), (7, 4, 1 / 16),
                                               (3, 1, 0.5)])
def test_matches_mxnet_deformable_psroipooling_without_offsets(
        tmp_path, k, samples, scale):
    rng = np.random.default_rng(k + samples)
    classes, height, width = 3, 13, 17
    x = rng.standard_normal((2, classes * k * k, height, width))
    rois = make_rois(2, height, width, scale, num=40, seed=k).numpy()
    span = max(height, width) / scale
    halves = np.concatenate([  # corners on exact halves: rounding ties
        rng.integers(0, 2, (12, 1)),
        np.round(rng.uniform(-0.2, 1.1, (12, 4)) * span) + 0.5
    ], 1)
    rois = np.concatenate([rois, halves])
    g = rng.standard_normal((len(rois), classes, k, k))
    for name, value in (('x', x), ('rois', rois), ('g', g)):
        np.save(tmp_path / f'{name}.npy', value)
    (tmp_path / 'case.json').write_text(
        json.dumps(dict(k=k, scale=scale, classes=classes, samples=samples)))
    run_mxnet(ORACLE, cwd=str(tmp_path))

    xt = torch.from_numpy(x).requires_grad_(True)
    out = ps_roi_align(xt, torch.from_numpy(rois), k, scale, samples,
                       legacy=True)
    torch.testing.assert_close(out.detach().numpy(),
                               np.load(tmp_path / 'y.npy'))
    out.backward(torch.from_numpy(g))
    torch.testing.assert_close(xt.grad.numpy(), np.load(tmp_path / 'dx.npy'))
