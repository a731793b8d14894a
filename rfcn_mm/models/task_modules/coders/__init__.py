from .py_faster_rcnn_bbox_coder import PyFasterRCNNBBoxCoder

__all__ = ['PyFasterRCNNBBoxCoder']
