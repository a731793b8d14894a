# Deformable convolution in the three res5 blocks (the 3x3 conv of each,
# 4 deformable groups, dilation 2, stride 16 kept; Deformable ConvNets,
# Dai et al. 2017), plain PS RoI pooling. The offset convs start at zero
# (PSRoIHead.init_weights keeps them there), so training starts from
# R-FCN. VOC mAP at IoU 0.5 and 0.7, the paper's two columns.
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    roi_head=dict(
        shared_head=dict(
            dcn=dict(type='DCN', deform_groups=4,
                     fallback_on_stride=False))))
val_evaluator = dict(iou_thrs=[0.5, 0.7])
test_evaluator = val_evaluator
