# Deformable-ConvNets' released R-FCN, ResNet-101 on COCO (rfcn_coco-0000
# .params, 32.1 AP on test-dev), converted with
#   python tools/model_converters/deformable_convnets_to_mmdet.py IN OUT.pth
# and run as its test code runs it: RGB input minus its means, no std;
# MSRA's Caffe-style ResNet (stride on the 1x1 convs, pool1 unpadded in ceil
# mode); py-faster-rcnn's anchors (scales 4-32) and proposal layer (6000 ->
# NMS 0.7 with +1 areas -> 300, no minimum size); its own box decoding (+1
# widths, centres at x1 + (w - 1) / 2, a box w' wide ends at x1 + w' - 1);
# PS RoI pooling in the reference's coordinates; per-class NMS 0.3 with +1
# areas, 100 detections; short side 600, long side at most 1000.
_base_ = './rfcn_r101_coco.py'

norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    data_preprocessor=dict(
        mean=[123.15, 115.90, 103.06], std=[1.0, 1.0, 1.0], bgr_to_rgb=True),
    backbone=dict(
        type='CaffePoolResNet', style='caffe', norm_cfg=norm_cfg,
        init_cfg=None),
    rpn_head=dict(
        type='PyFasterRCNNRPNHead',
        anchor_generator=dict(
            _delete_=True,
            type='PyFasterRCNNAnchorGenerator',
            scales=[4, 8, 16, 32],
            ratios=[0.5, 1.0, 2.0],
            strides=[16]),
        bbox_coder=dict(
            _delete_=True, type='PyFasterRCNNBBoxCoder',
            style='deformable-convnets')),
    roi_head=dict(
        shared_head=dict(style='caffe', init_cfg=None),
        bbox_roi_extractor=dict(roi_layer=dict(legacy=True)),
        bbox_head=dict(
            bbox_coder=dict(
                _delete_=True, type='PyFasterRCNNBBoxCoder',
                style='deformable-convnets'))),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.3, offset=1),
            max_per_img=100)))
