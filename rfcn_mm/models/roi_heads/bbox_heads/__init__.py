from .deform_ps_bbox_head import DeformPSBBoxHead
from .ps_bbox_head import PSBBoxHead

__all__ = ['PSBBoxHead', 'DeformPSBBoxHead']
