"""The fixed-shape sparse stage against mmdet's own post-processing (the
oracle), on inputs without tied scores (the order of equal scores is up to
each sort)."""
import pytest
import torch
from helpers.tiny_rfcn import build_tiny
from mmengine.config import ConfigDict

from rfcn_mm.fast.fixed_shape.post_processing import (fixed_shape_detections,
                                                      fixed_shape_proposals)
from rfcn_mm.fast.fixed_shape.slots import proposals_to_rois

IMG_HW = [(96, 128), (80, 112), (96, 100)]


def assert_no_ties(scores):
    assert scores.unique().numel() == scores.numel(), 'tied scores'


@pytest.fixture(scope='module')
def model():
    return build_tiny(seed=0, detector='FastRFCN').eval()


@pytest.mark.parametrize('nms_pre, max_per_img, min_size', [(600, 100, 0),
                                                            (50, 20, 0),
                                                            (-1, 300, 4.0)])
def test_proposals_match_rpn_head(model, nms_pre, max_per_img, min_size):
    g = torch.Generator().manual_seed(nms_pre + max_per_img)
    n, a, h, w = len(IMG_HW), 9, 6, 8
    cls = torch.randn(n, a, h, w, generator=g) * 2
    reg = torch.randn(n, a * 4, h, w, generator=g) * 0.5
    cfg = ConfigDict(
        nms_pre=nms_pre,
        max_per_img=max_per_img,
        nms=dict(type='nms', iou_threshold=0.7),
        min_bbox_size=min_size)
    metas = [dict(img_shape=hw) for hw in IMG_HW]
    want = model.rpn_head.predict_by_feat([cls], [reg],
                                          batch_img_metas=metas,
                                          cfg=cfg,
                                          rescale=False)
    priors = model.rpn_head.prior_generator.grid_priors([(h, w)],
                                                        device='cpu')[0]
    img_hw = torch.tensor(IMG_HW, dtype=torch.float32)
    boxes, valid = fixed_shape_proposals(model.rpn_head, cls, reg, priors,
                                         img_hw, cfg)
    assert boxes.shape == (n, max_per_img, 4)
    for i, res in enumerate(want):
        assert_no_ties(res.scores)
        num = int(valid[i].sum())
        assert num == len(res) > 0 and bool(valid[i, :num].all())
        torch.testing.assert_close(boxes[i, :num], res.bboxes, rtol=0, atol=0)
        assert bool((boxes[i, num:] == 0).all())
    rois = proposals_to_rois(boxes, valid)
    assert rois.shape == (n * max_per_img, 5)
    assert rois[:, 0].tolist() == [
        i if v else -1.0 for i in range(n) for v in valid[i].tolist()
    ]


def random_rois(num_valid, num_slots, seed):
    g = torch.Generator().manual_seed(seed)
    rois, valid = [], []
    for i, (num, (h, w)) in enumerate(zip(num_valid, IMG_HW)):
        xy = torch.rand(num_slots, 2, generator=g) * torch.tensor([w, h]) * .7
        wh = 4 + torch.rand(num_slots, 2, generator=g) * 40
        boxes = torch.cat([xy, xy + wh], dim=1)
        v = torch.arange(num_slots) < num
        rois.append(
            torch.cat([torch.full(
                (num_slots, 1), float(i)), boxes], dim=1) * v[:, None])
        valid.append(v)
    rois = torch.cat(rois)
    valid = torch.stack(valid)
    rois[:, 0] = rois[:, 0].where(valid.flatten(), torch.tensor(-1.))
    return rois, valid


@pytest.mark.parametrize('class_agnostic', [True, False])
@pytest.mark.parametrize('score_thr, max_per_img, nms', [
    (0.05, 100, dict(type='nms', iou_threshold=0.3)),
    (0.2, 7, dict(type='nms', iou_threshold=0.5)),
    (0.0, -1, dict(type='nms', iou_threshold=0.3, class_agnostic=True)),
])
def test_detections_match_bbox_head(class_agnostic, score_thr, max_per_img,
                                    nms):
    head = build_tiny(
        class_agnostic=class_agnostic, detector='FastRFCN').roi_head.bbox_head
    num_valid, slots = [30, 17, 0], 30
    rois, valid = random_rois(num_valid, slots, seed=int(score_thr * 100))
    g = torch.Generator().manual_seed(7)
    num_classes = head.num_classes
    cls = torch.randn(len(rois), num_classes + 1, generator=g) * 2
    reg = torch.randn(
        len(rois), 4 * (1 if class_agnostic else num_classes), generator=g)
    scale = [(1.5, 1.25), (1.0, 1.0), (0.5, 0.8)]
    cfg = ConfigDict(score_thr=score_thr, nms=nms, max_per_img=max_per_img)
    metas = [
        dict(img_shape=hw, scale_factor=s) for hw, s in zip(IMG_HW, scale)
    ]
    keep = [rois[i * slots:i * slots + num] for i, num in enumerate(num_valid)]
    pick = lambda t: [  # noqa: E731
        t[i * slots:i * slots + num] for i, num in enumerate(num_valid)
    ]
    want = head.predict_by_feat(
        rois=tuple(keep),
        cls_scores=tuple(pick(cls)),
        bbox_preds=tuple(pick(reg)),
        batch_img_metas=metas,
        rcnn_test_cfg=cfg,
        rescale=True)
    img_hw = torch.tensor(IMG_HW, dtype=torch.float32)
    rescale = torch.tensor([[1 / sx, 1 / sy] for sx, sy in scale])
    boxes, scores, labels, ok = fixed_shape_detections(head, rois, valid, cls,
                                                       reg, img_hw, rescale,
                                                       cfg)
    width = max_per_img if max_per_img > 0 else slots * num_classes
    assert boxes.shape == (3, width, 4) and ok.shape == (3, width)
    for i, res in enumerate(want):
        num = int(ok[i].sum())
        assert num == len(res) and bool(ok[i, :num].all())
        assert_no_ties(res.scores)
        torch.testing.assert_close(boxes[i, :num], res.bboxes, rtol=0, atol=0)
        torch.testing.assert_close(scores[i, :num], res.scores, rtol=0, atol=0)
        assert torch.equal(labels[i, :num], res.labels)
    assert len(want[0]) > 0 and len(want[2]) == 0
