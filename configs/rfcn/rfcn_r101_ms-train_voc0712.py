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
# a list replaces its base: each of the base's datasets, with this pipeline
train_dataloader = dict(
    dataset=dict(
        dataset=dict(datasets=[
            dict(voc, pipeline=train_pipeline)
            for voc in _base_.train_dataloader.dataset.dataset.datasets
        ])))
