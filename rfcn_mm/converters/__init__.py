"""Readers of the released R-FCN models' file formats (Caffe's
``.caffemodel``, MXNet's ``.params``), without Caffe or MXNet."""
from .caffemodel import CaffeLayer, CaffeModelError, read_caffemodel
from .mxnet_params import MXNetParamsError, read_params

__all__ = [
    'CaffeLayer', 'CaffeModelError', 'MXNetParamsError', 'read_caffemodel',
    'read_params'
]
