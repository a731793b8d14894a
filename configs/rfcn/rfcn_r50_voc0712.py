# ResNet-50 backbone.
_base_ = './rfcn_r101_voc0712.py'
pretrained = 'https://download.pytorch.org/models/resnet50-0676ba61.pth'
model = dict(
    backbone=dict(
        depth=50, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    roi_head=dict(
        shared_head=dict(
            depth=50,
            init_cfg=dict(type='Pretrained', checkpoint=pretrained))))
