from .bbox_heads import DeformPSBBoxHead, PSBBoxHead
from .ps_roi_head import PSRoIHead
from .roi_extractors import PSRoIExtractor

__all__ = ['PSBBoxHead', 'DeformPSBBoxHead', 'PSRoIExtractor', 'PSRoIHead']
