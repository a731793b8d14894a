# py-R-FCN's released ResNet-50 R-FCN on VOC 07+12 (joint training, OHEM;
# resnet50_rfcn_final.caffemodel, 77.6 mAP on VOC 2007 test), converted with
#   python tools/model_converters/pyrfcn_caffe_to_mmdet.py IN OUT.pth
# and run as rfcn_r101_pyrfcn_voc0712.py runs the ResNet-101 one.
_base_ = './rfcn_r101_pyrfcn_voc0712.py'
model = dict(
    backbone=dict(depth=50), roi_head=dict(shared_head=dict(depth=50)))
