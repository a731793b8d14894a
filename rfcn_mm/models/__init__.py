from .backbones import CaffePoolResNet
from .dense_heads import PyFasterRCNNRPNHead
from .detectors import RFCN
from .roi_heads import DeformPSBBoxHead, PSBBoxHead, PSRoIExtractor, PSRoIHead
from .task_modules import (PyFasterRCNNAnchorGenerator, PyFasterRCNNBBoxCoder,
                           RFCNOHEMSampler)

__all__ = [
    'CaffePoolResNet', 'RFCN', 'PSRoIHead', 'PSBBoxHead', 'DeformPSBBoxHead',
    'PSRoIExtractor', 'RFCNOHEMSampler', 'PyFasterRCNNAnchorGenerator',
    'PyFasterRCNNBBoxCoder', 'PyFasterRCNNRPNHead'
]
