from .bbox_heads import PSBBoxHead
from .ps_roi_head import PSRoIHead
from .roi_extractors import PSRoIExtractor

__all__ = ['PSBBoxHead', 'PSRoIExtractor', 'PSRoIHead']
