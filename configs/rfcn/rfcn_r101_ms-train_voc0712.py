# Multi-scale training: short side from {400, 500, 600, 700, 800}, max 1000.
_base_ = './rfcn_r101_voc0712.py'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1000, s) for s in (400, 500, 600, 700, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            datasets=[
                dict(pipeline=train_pipeline),
                dict(pipeline=train_pipeline)
            ])))
