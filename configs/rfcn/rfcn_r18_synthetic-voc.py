# A small R-FCN (ResNet-18, k = 7, OHEM) on the synthetic VOC-layout dataset
# that tools/demo.py writes: trains on 2 CPU cores in about 10 minutes.
_base_ = './rfcn_r101_voc0712.py'

data_root = 'data/synthetic_voc/'
classes = ('rectangle', 'ellipse', 'triangle', 'cross')
# trained from scratch: BN learns, nothing is frozen
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    rpn_head=dict(
        in_channels=256,
        feat_channels=128,
        anchor_generator=dict(scales=[2, 4, 8])),  # objects 24-128 px
    roi_head=dict(
        shared_head=dict(
            depth=18, norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
        bbox_head=dict(in_channels=512, mid_channels=256, num_classes=4)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=300)))

img_scale = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
dataset = dict(
    type='CheckedVOCDataset',  # mmdet's VOCDataset + named errors
    data_root=data_root,
    metainfo=dict(classes=classes),
    data_prefix=dict(sub_data_root='VOC2007/'))
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        ann_file='VOC2007/ImageSets/Main/test.txt',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.75)],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(base_batch_size=4)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
# tools/train_alternating.py: the paper's 4-step alternating training of
# this model, 600 iterations in all as the end-to-end training above. From
# random init, stage 2 (rfcn1) is the only one that trains the shared
# layers the final model keeps (stage 1's are dropped, stages 3 and 4
# freeze them), so it gets most of the iterations; the RPN on frozen
# layers (rpn2), whose proposals the final model uses, gets twice the
# first RPN's; the stages warm up for 10 iterations, rfcn1 for 50.
alternating_cfg = dict(
    variant='4-step',
    rpn=dict(max_iters=100, milestones=[75], warmup_iters=10),
    rfcn=dict(max_iters=50, milestones=[37], warmup_iters=10),
    stages=dict(
        rpn1=dict(max_iters=50, milestones=[37]),
        rfcn1=dict(max_iters=400, milestones=[300], warmup_iters=50)))
