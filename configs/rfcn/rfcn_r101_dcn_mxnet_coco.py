# Deformable-ConvNets' released Deformable R-FCN, ResNet-101 on COCO
# (rfcn_dcn_coco-0000.params, 35.7 AP on test-dev), converted with
#   python tools/model_converters/deformable_convnets_to_mmdet.py IN OUT.pth
# and run as its test code runs it: rfcn_r101_mxnet_coco.py's legacy
# network with deformable res5 3x3 convs (4 offset groups, dilation 2, the
# border rule of MXNet's DeformableConvolution: LegacyDCN) and
# deformable PS RoI pooling in the reference's coordinates (one offset
# field per class for the class maps, one for the box maps; 4 x 4 samples
# per bin, offsets scaled by 0.1).
_base_ = './rfcn_r101_mxnet_coco.py'
model = dict(
    roi_head=dict(
        shared_head=dict(
            dcn=dict(type='LegacyDCN', deform_groups=4,
                     fallback_on_stride=False)),
        bbox_roi_extractor=dict(
            roi_layer=dict(
                _delete_=True,
                type='DeformPSRoIPool',
                output_size=7,
                sample_per_part=4,
                trans_std=0.1,
                legacy=True)),
        bbox_head=dict(type='DeformPSBBoxHead')))
