from .coders import PyFasterRCNNBBoxCoder
from .prior_generators import PyFasterRCNNAnchorGenerator
from .samplers import RFCNOHEMSampler

__all__ = [
    'PyFasterRCNNAnchorGenerator', 'PyFasterRCNNBBoxCoder', 'RFCNOHEMSampler'
]
