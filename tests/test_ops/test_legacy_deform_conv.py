"""Deformable convolution with Deformable ConvNets v1's border rule:
MXNet 1.9.1's ``contrib.DeformableConvolution`` (the reference's kernel) in
float64 as the oracle for the output and the gradients to the input, the
offsets and the weights; hand-computed border samples; zero offsets as a
plain convolution; and mmcv's DCN parameters loading unchanged."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.mxnet_oracle import run_mxnet
from mmcv.ops import DeformConv2dPack, deform_conv2d

from rfcn_mm.ops import LegacyDeformConv2dPack, legacy_deform_conv2d


def _one_point(offset_y, offset_x, height=4, width=5):
    """A 1x1 kernel on a map whose value at (y, x) is 10y + x, every output
    moved by the same offset."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64),
                          indexing='ij')
    plane = (10 * y + x)[None, None]
    offset = torch.zeros(1, 2, height, width, dtype=torch.float64)
    offset[:, 0], offset[:, 1] = offset_y, offset_x
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    return plane, offset, weight


def test_border_rule_by_hand():
    plane, offset, weight = _one_point(0.5, 0.25)
    out = legacy_deform_conv2d(plane, offset, weight)[0, 0]
    # inside: bilinear, 10 (y + 0.5) + x + 0.25
    assert out[1, 2] == 10 * 1.5 + 2.25
    # y = 3.5 in [H - 1, H): row H - 1 unblended; mmcv blends it with 0
    assert out[3, 2] == 32.25
    mmcv = deform_conv2d(plane.float(), offset.float(), weight.float())
    assert mmcv[0, 0, 3, 2] == 0.5 * 32.25
    # y >= H reads 0
    plane, offset, weight = _one_point(1.0, 0.0)
    out = legacy_deform_conv2d(plane, offset, weight)[0, 0]
    assert out[3, 1] == 0 and out[2, 1] == 31
    # negative positions read 0, even within a pixel of the map
    plane, offset, weight = _one_point(-0.25, 0.0)
    out = legacy_deform_conv2d(plane, offset, weight)[0, 0]
    assert out[0, 3] == 0 and out[1, 3] == 10 * 0.75 + 3


def test_zero_offsets_are_a_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 9, 11, generator=g, dtype=torch.float64)
    w = torch.randn(6, 8, 3, 3, generator=g, dtype=torch.float64)
    for stride, pad, dil in ((1, 1, 1), (1, 2, 2), (2, 1, 1)):
        out_h = (9 + 2 * pad - 2 * dil - 1) // stride + 1
        out_w = (11 + 2 * pad - 2 * dil - 1) // stride + 1
        offset = torch.zeros(2, 2 * 4 * 9, out_h, out_w, dtype=torch.float64)
        torch.testing.assert_close(
            legacy_deform_conv2d(x, offset, w, stride, pad, dil, 4),
            F.conv2d(x, w, stride=stride, padding=pad, dilation=dil))


def test_bad_shapes_are_named():
    x = torch.randn(1, 8, 5, 5)
    with pytest.raises(ValueError, match='offset has shape'):
        legacy_deform_conv2d(x, torch.zeros(1, 18, 4, 4),
                             torch.randn(4, 8, 3, 3), padding=1)
    with pytest.raises(ValueError, match='3 deformable groups'):
        legacy_deform_conv2d(x, torch.zeros(1, 54, 5, 5),
                             torch.randn(4, 8, 3, 3), padding=1,
                             deform_groups=3)
    with pytest.raises(ValueError, match='weight takes 4'):
        legacy_deform_conv2d(x, torch.zeros(1, 18, 5, 5),
                             torch.randn(4, 4, 3, 3), padding=1)


def test_module_takes_mmcv_dcn_weights():
    torch.manual_seed(0)
    dcn = DeformConv2dPack(8, 6, 3, padding=2, dilation=2, deform_groups=4)
    torch.nn.init.normal_(dcn.conv_offset.weight, std=0.01)
    legacy = LegacyDeformConv2dPack(8, 6, 3, padding=2, dilation=2,
                                    deform_groups=4)
    legacy.load_state_dict(dcn.state_dict(), strict=True)
    x = torch.randn(1, 8, 10, 12)
    out = legacy(x)
    # the same samples inside the map; the two differ at its border only
    torch.testing.assert_close(out[..., 3:-3, 3:-3],
                               dcn(x)[..., 3:-3, 3:-3], rtol=1e-4,
                               atol=1e-4)
    with pytest.raises(ValueError, match='groups must be 1'):
        LegacyDeformConv2dPack(8, 6, 3, groups=2)


ORACLE = """
import json, numpy as np, mxnet as mx
from mxnet import autograd
case = json.load(open('case.json'))
x, off, w, g = (mx.nd.array(np.load(f'{n}.npy'), dtype='float64')
                for n in ('x', 'off', 'w', 'g'))
for t in (x, off, w):
    t.attach_grad()
with autograd.record():
    y = mx.nd.contrib.DeformableConvolution(
        data=x, offset=off, weight=w, kernel=(3, 3),
        stride=(case['stride'],) * 2, pad=(case['pad'],) * 2,
        dilate=(case['dil'],) * 2, num_filter=case['filters'],
        num_deformable_group=case['groups'], no_bias=True)
y.backward(g)
for name, t in (('y', y), ('dx', x.grad), ('doff', off.grad),
                ('dw', w.grad)):
    np.save(f'{name}.npy', t.asnumpy())
"""


@pytest.mark.parametrize('stride, pad, dil, groups', [(1, 2, 2, 4),
                                                      (1, 1, 1, 1),
                                                      (2, 1, 1, 2)])
def test_matches_mxnet_deformable_convolution(tmp_path, stride, pad, dil,
                                              groups):
    """Offsets up to several pixels move samples across and beyond the
    border; MXNet's operator in float64 is the oracle for the output and
    all three gradients."""
    rng = np.random.default_rng(stride * 10 + groups)
    x = rng.standard_normal((2, 8, 9, 11))
    w = rng.standard_normal((6, 8, 3, 3))
    out_h = (9 + 2 * pad - 2 * dil - 1) // stride + 1
    out_w = (11 + 2 * pad - 2 * dil - 1) // stride + 1
    off = rng.standard_normal((2, 18 * groups, out_h, out_w)) * 2.0
    g = rng.standard_normal((2, 6, out_h, out_w))
    for name, value in (('x', x), ('off', off), ('w', w), ('g', g)):
        np.save(tmp_path / f'{name}.npy', value)
    (tmp_path / 'case.json').write_text(json.dumps(dict(
        stride=stride, pad=pad, dil=dil, groups=groups, filters=6)))
    run_mxnet(ORACLE, cwd=str(tmp_path))

    xt, ot, wt = (torch.from_numpy(a).requires_grad_(True)
                  for a in (x, off, w))
    out = legacy_deform_conv2d(xt, ot, wt, stride, pad, dil, groups)
    torch.testing.assert_close(out.detach().numpy(),
                               np.load(tmp_path / 'y.npy'))
    out.backward(torch.from_numpy(g))
    for t, name in ((xt, 'dx'), (wt, 'dw')):
        torch.testing.assert_close(t.grad.numpy(),
                                   np.load(tmp_path / f'{name}.npy'))
    # MXNet's offset gradient is 0 where a sample falls on an integer
    # coordinate (floor's kink); random offsets never do
    torch.testing.assert_close(ot.grad.numpy(),
                               np.load(tmp_path / 'doff.npy'))
