# k = 1: no position sensitivity (global pooling in each RoI); Table 2.
_base_ = './rfcn_r101_voc0712.py'
k = 1
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(roi_layer=dict(output_size=k)),
        bbox_head=dict(roi_feat_size=k)))
