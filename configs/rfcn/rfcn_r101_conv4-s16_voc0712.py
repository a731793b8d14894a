# A trous ablation: no conv5; the R-FCN head sits on conv4 (stride 16).
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    roi_head=dict(
        shared_head=None,
        bbox_head=dict(in_channels=1024)))
