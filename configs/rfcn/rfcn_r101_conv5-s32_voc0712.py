# A trous ablation: conv5 without a trous, at stride 32.
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    roi_head=dict(
        shared_head=dict(stride=2, dilation=1),
        bbox_roi_extractor=dict(featmap_strides=[32])))
