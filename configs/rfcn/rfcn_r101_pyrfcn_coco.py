# py-R-FCN's released ResNet-101 R-FCN on COCO (joint training; 27.9 AP on
# COCO 2014 val by its README), converted with
#   python tools/model_converters/pyrfcn_caffe_to_mmdet.py IN OUT.pth
# Its network is the one of rfcn_r101_mxnet_coco.py (12 anchors, scales
# 4-32, as models/coco/ResNet-101/rfcn_end2end/test_agnostic.prototxt);
# py-R-FCN's test code differs from Deformable-ConvNets' in what follows:
# BGR input minus Caffe's means, py-faster-rcnn's box decoding, proposals
# under 16 px of the original image dropped, no score threshold and 400
# detections per image (rfcn_r101_pyrfcn_voc0712.py's settings).
_base_ = './rfcn_r101_mxnet_coco.py'
model = dict(
    data_preprocessor=dict(
        mean=[102.9801, 115.9465, 122.7717], bgr_to_rgb=False),
    rpn_head=dict(
        bbox_coder=dict(style='py-faster-rcnn')),
    roi_head=dict(
        bbox_head=dict(bbox_coder=dict(style='py-faster-rcnn'))),
    test_cfg=dict(
        rpn=dict(min_bbox_size=16),
        rcnn=dict(score_thr=0.0, max_per_img=400)))
