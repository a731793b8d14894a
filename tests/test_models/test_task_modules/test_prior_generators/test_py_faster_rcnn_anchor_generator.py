"""py-faster-rcnn's anchors: against a NumPy transcription of its
``generate_anchors`` (tests/helpers/py_faster_rcnn.py: area kept per
ratio, rounded before scaling, NumPy's rounding) and the values worked out
by hand, and laid over the map in mmdet's order."""
import numpy as np
import pytest
import torch
from helpers.py_faster_rcnn import generate_anchors
from mmdet.registry import TASK_UTILS
from mmengine.registry import init_default_scope


def _generator(**kwargs):
    init_default_scope('mmdet')
    return TASK_UTILS.build(
        dict(type='PyFasterRCNNAnchorGenerator', strides=[16], **kwargs))


@pytest.mark.parametrize('ratios, scales', [([0.5, 1.0, 2.0], [8, 16, 32]),
                                            ([0.5, 1.0, 2.0], [4, 8, 16, 32]),
                                            ([0.33, 1.5], [2, 3])])
def test_base_anchors_are_py_faster_rcnns(ratios, scales):
    gen = _generator(ratios=ratios, scales=scales)
    got = gen.base_anchors[0].numpy()
    np.testing.assert_array_equal(got, generate_anchors(16, ratios, scales))


def test_the_values_that_differ_from_mmdets_legacy_generator():
    gen = _generator(ratios=[0.5, 1.0, 2.0], scales=[8, 16, 32])
    got = gen.base_anchors[0]
    assert got[0].tolist() == [-84, -40, 99, 55]  # ratio 0.5, scale 8
    assert got[2].tolist() == [-360, -184, 375, 199]  # ratio 0.5, scale 32
    assert got[4].tolist() == [-120, -120, 135, 135]  # square, scale 16
    # mmdet 1.x's setting of its legacy generator: centre offset 0.5
    legacy = TASK_UTILS.build(
        dict(type='LegacyAnchorGenerator', strides=[16], ratios=[0.5, 1, 2],
             scales=[8, 16, 32], base_sizes=[16],
             center_offset=0.5)).base_anchors[0]
    assert legacy[0].tolist() == [-83, -37, 98, 52]
    assert torch.equal(legacy[3:6], got[3:6])


def test_anchors_over_the_map_in_mmdets_order():
    """All anchors of location (y, x) = base anchors + 16 * (x, y, x, y),
    location-major and anchor-minor, as py-faster-rcnn lays them out."""
    gen = _generator(ratios=[0.5, 1.0, 2.0], scales=[8, 16, 32])
    anchors = gen.grid_priors([(3, 5)], device='cpu')[0]
    base = gen.base_anchors[0]
    assert anchors.shape == (3 * 5 * 9, 4)
    for y in range(3):
        for x in range(5):
            shift = torch.tensor([x, y, x, y], dtype=torch.float32) * 16
            k = (y * 5 + x) * 9
            torch.testing.assert_close(anchors[k:k + 9], base + shift)


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(ValueError, match='center_offset is not an option'):
        _generator(ratios=[1.0], scales=[8], center_offset=0.5)
