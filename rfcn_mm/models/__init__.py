from .data_preprocessors import BatchBucketPad
from .detectors.rfcn import RFCN
from .roi_heads.bbox_heads.ps_bbox_head import PSBBoxHead
from .roi_heads.ps_roi_head import PSRoIHead
from .roi_heads.roi_extractors.ps_roi_extractor import PSRoIExtractor
from .task_modules.samplers.rfcn_ohem_sampler import RFCNOHEMSampler

__all__ = [
    'RFCN', 'PSRoIHead', 'PSBBoxHead', 'PSRoIExtractor', 'RFCNOHEMSampler',
    'BatchBucketPad'
]
