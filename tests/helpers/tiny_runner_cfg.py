custom_imports = dict(imports=['tiny_runner'], allow_failed_imports=False)
default_scope = 'mmdet'
model = dict(type='TinyRegressor')
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='TinyRegressionDataset'))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=3),
    dict(type='MultiStepLR', milestones=[5, 9], by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=12)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
    logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
custom_hooks = [
    dict(type='StallHook'),
    dict(type='StallInSaveHook'),
    dict(type='RankReportHook'),
    dict(type='FiniteLossHook')
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))  # CPU-only multi-process
