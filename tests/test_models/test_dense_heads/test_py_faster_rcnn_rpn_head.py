"""PyFasterRCNNRPNHead's proposals against py-faster-rcnn's ProposalLayer
(NumPy transcription in tests/helpers/py_faster_rcnn.py) on random head
outputs: the same boxes and scores, in the same order."""
import numpy as np
import pytest
import torch
from helpers.py_faster_rcnn import proposal_layer
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope


def _head():
    init_default_scope('mmdet')
    return MODELS.build(
        dict(
            type='PyFasterRCNNRPNHead',
            in_channels=8,
            feat_channels=8,
            anchor_generator=dict(
                type='PyFasterRCNNAnchorGenerator',
                scales=[8, 16, 32],
                ratios=[0.5, 1.0, 2.0],
                strides=[16]),
            bbox_coder=dict(type='PyFasterRCNNBBoxCoder'),
            test_cfg=dict(
                nms_pre=600,
                max_per_img=50,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=16)))


@pytest.mark.parametrize('scale, seed', [(1.0, 0), (1.6, 1), (0.5, 2)])
def test_proposals_match_the_proposal_layer(scale, seed):
    rng = np.random.default_rng(seed)
    height, width = 14, 19  # conv4 map
    # float32, as mmcv's NMS takes; the reference computes in float64
    logits = rng.normal(0, 2, (9, height, width)).astype(np.float32)
    deltas = rng.normal(0, 0.3, (36, height, width)).astype(np.float32)
    img_shape = (height * 16 - 5, width * 16 - 3)
    head = _head()
    meta = dict(img_shape=img_shape, scale_factor=(scale, scale))
    result = head.predict_by_feat(
        [torch.from_numpy(logits)[None]], [torch.from_numpy(deltas)[None]],
        batch_img_metas=[meta], rescale=False)[0]
    boxes, scores = proposal_layer(
        1 / (1 + np.exp(-logits.astype(np.float64))),
        deltas.astype(np.float64), (*img_shape, scale),
        pre_nms=600, post_nms=50, nms_thresh=0.7, min_size=16)
    assert len(boxes) == 50
    np.testing.assert_allclose(result.bboxes.numpy(), boxes, rtol=1e-5)
    np.testing.assert_allclose(result.scores.numpy(), scores, rtol=1e-5)
    rescaled = head.predict_by_feat(
        [torch.from_numpy(logits)[None]], [torch.from_numpy(deltas)[None]],
        batch_img_metas=[meta], rescale=True)[0]
    np.testing.assert_allclose(rescaled.bboxes.numpy(), boxes / scale,
                               rtol=1e-5)


def test_mmdets_rpn_head_proposes_otherwise():
    """The same outputs through mmdet's RPNHead (top-k before the size
    filter, no +1) give other proposals: the class is needed."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (1, 9, 14, 19)).astype(np.float32)
    deltas = rng.normal(0, 0.3, (1, 36, 14, 19)).astype(np.float32)
    ours = _head()
    cfg = ConfigDict(ours.test_cfg)
    theirs = MODELS.build(
        dict(type='RPNHead', in_channels=8, feat_channels=8,
             anchor_generator=dict(
                 type='PyFasterRCNNAnchorGenerator', scales=[8, 16, 32],
                 ratios=[0.5, 1.0, 2.0], strides=[16]),
             bbox_coder=dict(type='PyFasterRCNNBBoxCoder'), test_cfg=cfg))
    meta = dict(img_shape=(219, 301), scale_factor=(1.6, 1.6))
    args = ([torch.from_numpy(logits)], [torch.from_numpy(deltas)])
    a = ours.predict_by_feat(*args, batch_img_metas=[meta])[0]
    b = theirs.predict_by_feat(*args, batch_img_metas=[meta])[0]
    assert a.bboxes.shape != b.bboxes.shape or not torch.allclose(
        a.bboxes, b.bboxes)
