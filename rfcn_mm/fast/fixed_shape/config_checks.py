"""Which configs the fixed-shape code reproduces: every check names the
config key it refuses."""
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.samplers import RandomSampler

from rfcn_mm.models import RFCNOHEMSampler
from .losses import REG_LOSSES


def nms_cfg_problems(name: str, nms) -> list:
    """``[problem]`` when the NMS config ``nms`` (at key ``name``) is not
    mmcv's plain NMS, which :func:`rfcn_mm.ops.sorted_nms` reproduces;
    ``[]`` otherwise."""
    # any other key (offset, score_threshold, ...) changes mmcv's NMS
    extra = set(
        nms or {}) - {'type', 'iou_threshold', 'class_agnostic', 'split_thr'}
    if not nms or nms.get('type', 'nms') != 'nms' or extra:
        return [
            f'{name} must be dict(type=\'nms\', iou_threshold=...), '
            f'got {nms}'
        ]
    return []


def check_fixed_shape_support(detector) -> None:
    """Raise ValueError naming the first part of ``detector`` (an RFCN) that
    the fixed-shape stage does not reproduce."""
    rpn, head = detector.rpn_head, detector.roi_head.bbox_head
    rpn_cfg, rcnn_cfg = detector.test_cfg.rpn, detector.test_cfg.rcnn
    problems = []
    if len(rpn.prior_generator.strides) != 1:
        problems.append('the RPN must have one level')
    for name, coder in (('rpn_head', rpn.bbox_coder), ('bbox_head',
                                                       head.bbox_coder)):
        if type(coder) is not DeltaXYWHBBoxCoder:
            problems.append(f'{name}.bbox_coder must be DeltaXYWHBBoxCoder, '
                            f'got {type(coder).__name__}')
    if getattr(head, 'custom_cls_channels', False):
        problems.append('bbox_head with custom_cls_channels')
    for name, nms in (('test_cfg.rpn.nms', rpn_cfg.get('nms')),
                      ('test_cfg.rcnn.nms', rcnn_cfg.get('nms'))):
        problems += nms_cfg_problems(name, nms)
    if rpn_cfg.get('max_per_img', 0) <= 0:
        problems.append('test_cfg.rpn.max_per_img must be positive')
    if problems:
        raise ValueError(
            'fixed_shape_post=True cannot reproduce this model\'s '
            'post-processing: ' + '; '.join(problems) +
            '. Use optimize_for_inference(fixed_shape_post=False).')


def check_fixed_shape_train_support(detector) -> None:
    """Raise ValueError naming every part of ``detector`` (an RFCN) whose
    training the fixed-shape losses do not reproduce."""
    rpn, roi_head = detector.rpn_head, detector.roi_head
    head = roi_head.bbox_head
    problems = []
    if len(rpn.prior_generator.strides) != 1:
        problems.append('the RPN must have one level')
    for name, part in (('rpn_head', rpn), ('roi_head.bbox_head', head)):
        if type(part.bbox_coder) is not DeltaXYWHBBoxCoder:
            problems.append(f'{name}.bbox_coder must be DeltaXYWHBBoxCoder')
        if part.reg_decoded_bbox:
            problems.append(f'{name}.reg_decoded_bbox is not supported')
        if type(part.loss_bbox) not in REG_LOSSES:
            problems.append(f'{name}.loss_bbox must be SmoothL1Loss or '
                            f'L1Loss, got {type(part.loss_bbox).__name__}')
        if type(part.loss_cls).__name__ != 'CrossEntropyLoss' or \
                part.loss_cls.use_mask:
            problems.append(f'{name}.loss_cls must be CrossEntropyLoss')
    if getattr(head.loss_cls, 'use_sigmoid', False):
        problems.append('roi_head.bbox_head.loss_cls must be a softmax '
                        'CrossEntropyLoss')
    if getattr(head, 'custom_cls_channels', False):
        problems.append('bbox_head with custom_cls_channels')
    for name, assigner in (('train_cfg.rpn.assigner', rpn.assigner),
                           ('train_cfg.rcnn.assigner',
                            roi_head.bbox_assigner)):
        if type(assigner) is not MaxIoUAssigner:
            problems.append(f'{name} must be MaxIoUAssigner')
            continue
        if assigner.ignore_iof_thr > 0 or assigner.perm_repeat_gt_cfg:
            problems.append(f'{name}: ignore_iof_thr and perm_repeat_gt_cfg '
                            'are not supported')
        calc = assigner.iou_calculator
        if type(calc).__name__ != 'BboxOverlaps2D' or calc.scale != 1. or \
                calc.dtype is not None:
            problems.append(f'{name}.iou_calculator must be a plain '
                            'BboxOverlaps2D')
    if type(rpn.sampler) is not RandomSampler:
        problems.append('train_cfg.rpn.sampler must be RandomSampler')
    sampler = roi_head.bbox_sampler
    if type(sampler) is not RandomSampler and \
            not isinstance(sampler, RFCNOHEMSampler):
        problems.append('train_cfg.rcnn.sampler must be RandomSampler or '
                        'RFCNOHEMSampler')
    if detector.train_cfg.rpn_proposal.get('max_per_img', 0) <= 0:
        problems.append('train_cfg.rpn_proposal.max_per_img must be positive')
    problems += nms_cfg_problems('train_cfg.rpn_proposal.nms',
                                 detector.train_cfg.rpn_proposal.get('nms'))
    if problems:
        raise ValueError('train_cfg.fixed_shape=True cannot reproduce this '
                         'model\'s training: ' + '; '.join(problems) +
                         '. Set train_cfg.fixed_shape=False.')
