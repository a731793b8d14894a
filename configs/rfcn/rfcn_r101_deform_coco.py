# Deformable R-FCN on COCO (Dai et al. 2017: 34.5 AP on test-dev against
# R-FCN's 30.8): the COCO config with deformable conv5 and deformable PS RoI
# pooling. Class-specific offsets as the reference (2 * 49 * 81 = 7938
# channels); class_agnostic_offsets=True in the bbox head shares one field.
_base_ = './rfcn_r101_coco.py'
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
