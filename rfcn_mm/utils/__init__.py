from .config import check_override_keys, load_config
from .mmcv_ops import check_mmcv_ops
from .pretrained import drop_unavailable_pretrained

__all__ = [
    'check_mmcv_ops', 'check_override_keys', 'drop_unavailable_pretrained',
    'load_config'
]
