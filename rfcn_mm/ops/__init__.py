from .deform_ps_roi_pool import DeformPSRoIPool, deform_ps_roi_pool
from .legacy_deform_conv import LegacyDeformConv2dPack, legacy_deform_conv2d
from .ps_roi_align import PSRoIAlign, ps_roi_align
from .ps_roi_pool import PSRoIPool, ps_roi_pool
from .reference import (deform_ps_roi_pool_reference, ps_roi_align_reference,
                        ps_roi_pool_reference)
from .sorted_nms import sorted_nms

__all__ = [
    'PSRoIPool', 'ps_roi_pool', 'PSRoIAlign', 'ps_roi_align',
    'ps_roi_pool_reference', 'ps_roi_align_reference', 'sorted_nms',
    'DeformPSRoIPool', 'deform_ps_roi_pool', 'deform_ps_roi_pool_reference',
    'LegacyDeformConv2dPack', 'legacy_deform_conv2d'
]
