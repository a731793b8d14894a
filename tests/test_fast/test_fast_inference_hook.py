"""RFCNFastInferenceHook."""
from types import SimpleNamespace

import pytest
import torch
from helpers.tiny_rfcn import build_tiny
from mmdet.registry import HOOKS, MODELS
from mmengine.logging import MMLogger


def runner_with(model):
    return SimpleNamespace(
        model=model, logger=MMLogger.get_instance('fast_hook_test'))


def test_hook_optimizes_the_detector_inside_a_tta_wrapper():
    detector = build_tiny(detector='FastRFCN')
    tta = MODELS.build(
        dict(
            type='DetTTAModel',
            module=detector,
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
    hook = HOOKS.build(dict(type='RFCNFastInferenceHook', dtype='float32'))
    before = torch.backends.cudnn.benchmark
    try:
        hook.before_test(runner_with(tta))
        assert torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = before
    assert detector.inference_mode == dict(
        dtype='float32',
        fuse_bn=True,
        channels_last=True,
        cuda_graph=False,
        fixed_shape_post=True)
    assert not detector.training


def test_hook_names_a_model_it_cannot_optimize():
    hook = HOOKS.build(dict(type='RFCNFastInferenceHook'))
    with pytest.raises(TypeError, match='needs a FastRFCN model, got Linear'):
        hook.before_test(runner_with(torch.nn.Linear(2, 2)))
    # a plain RFCN is told how to become one
    with pytest.raises(TypeError, match="got RFCN: set model.type='FastRFCN'"):
        hook.before_test(runner_with(build_tiny()))
