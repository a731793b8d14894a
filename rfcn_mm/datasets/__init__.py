from .checked_coco_dataset import CheckedCocoDataset
from .checked_voc_dataset import CheckedVOCDataset
from .synthetic_voc import CLASSES as SYNTHETIC_CLASSES
from .synthetic_voc import make_synthetic_shapes, make_synthetic_voc

__all__ = [
    'CheckedCocoDataset', 'CheckedVOCDataset', 'make_synthetic_shapes',
    'make_synthetic_voc',
    'SYNTHETIC_CLASSES'
]
