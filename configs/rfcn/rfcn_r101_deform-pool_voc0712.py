# Deformable position-sensitive RoI pooling only (Deformable ConvNets, Dai
# et al. 2017): offsets from 1x1 convs on the 1024-channel map (one field
# per class for the class maps, one for the box maps), pooled without
# offsets, then the main pooling with them (trans_std 0.1, 4 x 4 samples
# per bin). The offset convs start and stay at zero after init_weights.
# VOC mAP at IoU 0.5 and 0.7, the paper's two columns.
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(
                _delete_=True,
                type='DeformPSRoIPool',
                output_size=7,
                sample_per_part=4,
                trans_std=0.1)),
        bbox_head=dict(type='DeformPSBBoxHead')))
val_evaluator = dict(iou_thrs=[0.5, 0.7])
test_evaluator = val_evaluator
