# Position-sensitive RoI Align (bilinear samples) instead of PS RoI pooling.
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(
                _delete_=True,
                type='PSRoIAlign',
                output_size=7,
                sampling_ratio=2,
                aligned=True))))
