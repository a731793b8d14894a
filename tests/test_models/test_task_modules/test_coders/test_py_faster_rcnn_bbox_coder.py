"""py-faster-rcnn's box deltas: decode against a NumPy transcription of
``bbox_transform_inv`` / ``clip_boxes`` (tests/helpers/py_faster_rcnn.py),
encode as its inverse, a hand-computed box, and the half pixel that
separates mmdet's legacy coder; Deformable-ConvNets' style against a
transcription of its ``nonlinear_pred``."""
import numpy as np
import pytest
import torch
from helpers.py_faster_rcnn import (bbox_transform_inv, clip_boxes,
                                    nonlinear_pred)
from mmdet.registry import TASK_UTILS
from mmengine.registry import init_default_scope


def _coder(**kwargs):
    init_default_scope('mmdet')
    return TASK_UTILS.build(dict(type='PyFasterRCNNBBoxCoder', **kwargs))


def _inv(boxes, deltas, im_shape=None):
    out = bbox_transform_inv(boxes, deltas)
    return out if im_shape is None else clip_boxes(out, im_shape)


def _boxes(n, rng):
    xy = rng.uniform(0, 300, (n, 2))
    wh = rng.uniform(1, 200, (n, 2))
    return np.hstack([xy, xy + wh])


def test_decode_matches_bbox_transform_inv():
    rng = np.random.default_rng(0)
    boxes = _boxes(50, rng)
    deltas = rng.normal(0, 0.5, (50, 8))  # (bg, fg) agnostic pairs
    coder = _coder()
    got = coder.decode(torch.from_numpy(boxes), torch.from_numpy(deltas))
    np.testing.assert_allclose(got.numpy(), _inv(boxes, deltas), rtol=1e-12)
    got = coder.decode(
        torch.from_numpy(boxes), torch.from_numpy(deltas), (240, 320))
    np.testing.assert_allclose(got.numpy(), _inv(boxes, deltas, (240, 320)),
                               rtol=1e-12)


def test_hand_computed_and_half_a_pixel_from_mmdets_legacy_coder():
    """Box [10, 20, 29, 59]: w 20, h 40, centre (20, 40). dx = 0.1, dw =
    log 2: centre 22, width 40: [2, 20, 42, 60]."""
    box = torch.tensor([[10., 20., 29., 59.]], dtype=torch.float64)
    delta = torch.tensor([[0.1, 0., np.log(2.), 0.]], dtype=torch.float64)
    out = _coder().decode(box, delta)
    torch.testing.assert_close(out, torch.tensor([[2., 20., 42., 60.]],
                                                 dtype=torch.float64))
    zero = _coder().decode(box, torch.zeros_like(delta))
    torch.testing.assert_close(zero, box + torch.tensor([[0., 0., 1., 1.]],
                                                        dtype=torch.float64))
    legacy = TASK_UTILS.build(dict(type='LegacyDeltaXYWHBBoxCoder'))
    assert not torch.allclose(legacy.decode(box, delta), out)


def test_encode_inverts_decode_with_means_and_stds():
    rng = np.random.default_rng(1)
    boxes = torch.from_numpy(_boxes(40, rng))
    deltas = torch.from_numpy(rng.normal(0, 1, (40, 4)))
    coder = _coder(target_stds=(0.1, 0.1, 0.2, 0.2),
                   target_means=(0.01, 0., 0., -0.02))
    gt = coder.decode(boxes, deltas)
    # decode's box is ctr +/- w/2, one pixel short of the +1 count
    gt = gt - torch.tensor([0., 0., 1., 1.], dtype=gt.dtype)
    torch.testing.assert_close(coder.encode(boxes, gt), deltas)


def test_the_log_ratio_clamp_is_optional():
    box = torch.tensor([[0., 0., 9., 9.]])
    huge = torch.tensor([[0., 0., 100., 0.]])  # exp overflows float32
    assert torch.isinf(_coder().decode(box, huge)).any()
    clamped = _coder(max_log_ratio=4.135).decode(box, huge)
    assert torch.isfinite(clamped).all()
    with pytest.raises(ValueError, match='4 values'):
        _coder(target_stds=(0.1, 0.2))


def test_deformable_convnets_style_matches_nonlinear_pred():
    rng = np.random.default_rng(4)
    boxes = _boxes(50, rng)
    deltas = rng.normal(0, 0.5, (50, 8))
    coder = _coder(style='deformable-convnets')
    got = coder.decode(torch.from_numpy(boxes), torch.from_numpy(deltas))
    want = nonlinear_pred(boxes, deltas)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    # same x1 as py-faster-rcnn's, x2 one pixel less
    want4, pfr4 = want.reshape(-1, 4), _inv(boxes, deltas).reshape(-1, 4)
    np.testing.assert_allclose(want4[:, :2], pfr4[:, :2], rtol=1e-12)
    np.testing.assert_allclose(want4[:, 2:], pfr4[:, 2:] - 1, rtol=1e-12)
    # mmdet's legacy coder: same centre, but a box w' wide spans w' + 1
    legacy = TASK_UTILS.build(dict(type='LegacyDeltaXYWHBBoxCoder'))
    np.testing.assert_allclose(
        legacy.decode(torch.from_numpy(boxes),
                      torch.from_numpy(deltas[:, 4:])).numpy(),
        want[:, 4:] + [-0.5, -0.5, 0.5, 0.5], rtol=1e-12)
    # the deltas are the same in both styles
    gts = _boxes(50, rng)
    torch.testing.assert_close(
        coder.encode(torch.from_numpy(boxes), torch.from_numpy(gts)),
        _coder().encode(torch.from_numpy(boxes), torch.from_numpy(gts)))
    with pytest.raises(ValueError, match="style='caffe'"):
        _coder(style='caffe')
