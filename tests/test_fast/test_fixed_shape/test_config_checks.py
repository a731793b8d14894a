"""Configs the fixed-shape code does not reproduce are refused by name."""
import pytest
from helpers.tiny_rfcn import build_tiny, tiny_model_cfg
from mmdet.registry import MODELS


def test_unsupported_training_is_named():
    cfg = tiny_model_cfg(detector='FastRFCN')
    cfg.train_cfg.fixed_shape = True
    cfg.train_cfg.rpn.assigner.ignore_iof_thr = 0.5
    cfg.roi_head.bbox_head.loss_bbox = dict(type='GIoULoss')
    cfg.train_cfg.rpn_proposal.max_per_img = -1
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    msg = str(err.value)
    assert 'train_cfg.rpn.assigner: ignore_iof_thr' in msg
    assert 'roi_head.bbox_head.loss_bbox must be SmoothL1Loss' in msg
    assert 'rpn_proposal.max_per_img must be positive' in msg


def test_cuda_graph_needs_fixed_shape():
    cfg = tiny_model_cfg(detector='FastRFCN')
    cfg.train_cfg.cuda_graph = True
    with pytest.raises(ValueError, match='needs train_cfg.fixed_shape'):
        MODELS.build(cfg)


def test_unsupported_post_processing_is_named():
    model = build_tiny(detector='FastRFCN')
    model.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.3)
    with pytest.raises(
            ValueError,
            match=r"test_cfg.rcnn.nms must be "
            r"dict\(type='nms'.*fixed_shape_post=False"):
        model.optimize_for_inference()
    model.optimize_for_inference(fixed_shape_post=False)
    assert model.inference_mode['fixed_shape_post'] is False
