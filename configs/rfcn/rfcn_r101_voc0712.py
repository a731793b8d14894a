# R-FCN, ResNet-101, k = 7, OHEM 128 of 300, PASCAL VOC 07+12 -> VOC07 test.
# The primitive config of the family: every variant is a short delta on it.
_base_ = [
    'mmdet::_base_/datasets/voc0712.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['rfcn_mm'], allow_failed_imports=False)

k = 7  # position-sensitive bin grid k x k
num_classes = 20
# ImageNet ResNet-101 (torchvision's weights); if it cannot be fetched
# (offline), tools/train.py stops and says where to put the file
# (--from-scratch trains from random init, with nothing frozen).
pretrained = 'https://download.pytorch.org/models/resnet101-63fe2227.pth'
norm_cfg = dict(type='BN', requires_grad=False)  # frozen BN, as the paper

model = dict(
    type='RFCN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=16),
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=3,  # conv1..conv4: stride 16, feeds the RPN and the head
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        frozen_stages=1,  # conv1 + res2 frozen
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    rpn_head=dict(
        type='RPNHead',
        in_channels=1024,  # RPN on conv4
        feat_channels=512,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8, 16, 32],  # 9 anchors, base 16
            ratios=[0.5, 1.0, 2.0],
            strides=[16]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        type='PSRoIHead',
        # conv5 on the whole conv4 map: stride 1 and dilation 2 (a trous)
        shared_head=dict(
            type='ResLayer',
            depth=101,
            stage=3,
            stride=1,
            dilation=2,
            style='pytorch',
            norm_cfg=norm_cfg,
            norm_eval=True,
            init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
        bbox_roi_extractor=dict(
            type='PSRoIExtractor',
            roi_layer=dict(type='PSRoIPool', output_size=k),
            featmap_strides=[16]),
        bbox_head=dict(
            type='PSBBoxHead',
            roi_feat_size=k,
            in_channels=2048,
            mid_channels=1024,  # the paper's 1x1 reduce conv
            num_classes=num_classes,
            reg_class_agnostic=True,  # 4k^2 box maps shared by classes
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=0,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=6000,  # 6000 boxes -> NMS 0.7 -> 300 proposals
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,  # positive at IoU >= 0.5, negative below
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1),
            # the paper's OHEM: loss of all RoIs, keep the top 128 per image
            sampler=dict(type='RFCNOHEMSampler', num=128, nms_thr=None),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000,
            max_per_img=300,  # 300 RoIs at test time
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.3),  # per-class NMS 0.3
            max_per_img=100)))

# mmdet's VOC 07+12 data and pipeline (single scale 600, max 1000, with
# flips), read by CheckedVOCDataset: a corrupt or missing annotation or
# image, or an unknown class, stops the run at start with the file named
# (boxes that leave the image are clipped, as mmdet's Resize does anyway)
train_dataloader = dict(
    batch_size=1,  # x 8 GPUs = 8 images
    num_workers=2,
    dataset=dict(
        dataset=dict(datasets=[
            dict(voc, type='CheckedVOCDataset', out_of_image='clip')
            for voc in _base_.train_dataloader.dataset.dataset.datasets
        ])))
val_dataloader = dict(
    dataset=dict(type='CheckedVOCDataset', out_of_image='clip'))
test_dataloader = val_dataloader

# SGD, lr 1e-3 for 20k then 1e-4 for 10k iterations at 8 images/iteration
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=30000,
    val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=30000,
        milestones=[20000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4))
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=5000,
        max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
# stop at a head/dataset class-count mismatch before any loop starts, and at
# the first NaN/inf loss before its weights are saved
custom_hooks = [
    dict(type='NumClassesCheckHook'),
    dict(type='FiniteLossHook'),
]
# Multi-process runs: a collective operation that waits more than 10 minutes
# for another rank (stopped, or stuck) fails the run with the rank named,
# instead of gloo's / NCCL's silent 30 minutes. Evaluation, which one rank
# may finish alone while the others wait, stays well within it.
env_cfg = dict(dist_cfg=dict(timeout=600))
# TensorBoard too (needs `pip install tensorboard`):
# vis_backends = [dict(type='LocalVisBackend'),
#                 dict(type='TensorboardVisBackend')]
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
