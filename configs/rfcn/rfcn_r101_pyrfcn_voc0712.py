# py-R-FCN's released ResNet-101 R-FCN on VOC 07+12 (joint training, OHEM;
# resnet101_rfcn_final.caffemodel, 79.4 mAP on VOC 2007 test), converted with
#   python tools/model_converters/pyrfcn_caffe_to_mmdet.py IN OUT.pth
# and run as its test code (test_agnostic.prototxt, lib/fast_rcnn/test.py)
# runs it: BGR input minus its means, no std; MSRA's Caffe-style ResNet
# (stride on the 1x1 convs, pool1 unpadded in ceil mode); py-faster-rcnn's
# anchors, box deltas (+1 widths) and proposal layer (boxes under 16 px of
# the original image dropped, 6000 -> NMS 0.7 with +1 areas -> 300); PS RoI
# pooling in the reference's coordinates; per-class NMS 0.3 with +1 areas,
# no score threshold, 400 detections; short side 600, long side at most 1000.
_base_ = './rfcn_r101_voc0712.py'

norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    data_preprocessor=dict(
        mean=[102.9801, 115.9465, 122.7717],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False),
    backbone=dict(
        type='CaffePoolResNet', style='caffe', norm_cfg=norm_cfg,
        init_cfg=None),
    rpn_head=dict(
        type='PyFasterRCNNRPNHead',
        anchor_generator=dict(
            _delete_=True,
            type='PyFasterRCNNAnchorGenerator',
            scales=[8, 16, 32],
            ratios=[0.5, 1.0, 2.0],
            strides=[16]),
        bbox_coder=dict(_delete_=True, type='PyFasterRCNNBBoxCoder')),
    roi_head=dict(
        shared_head=dict(style='caffe', init_cfg=None),
        bbox_roi_extractor=dict(roi_layer=dict(legacy=True)),
        bbox_head=dict(
            bbox_coder=dict(_delete_=True, type='PyFasterRCNNBBoxCoder'))),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=16),
        rcnn=dict(
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.3, offset=1),
            max_per_img=400)))
