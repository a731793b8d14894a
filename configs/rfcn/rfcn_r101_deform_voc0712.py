# Deformable R-FCN (Dai et al. 2017): deformable conv5 (as
# rfcn_r101_dcn-conv5_voc0712.py) and deformable PS RoI pooling (as
# rfcn_r101_deform-pool_voc0712.py), both starting at zero offsets, i.e.
# from R-FCN. VOC mAP at IoU 0.5 and 0.7, the paper's two columns.
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    roi_head=dict(
        shared_head=dict(
            dcn=dict(type='DCN', deform_groups=4,
                     fallback_on_stride=False)),
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
