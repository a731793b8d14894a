from .config import check_override_keys, load_config
from .mmcv_ops import check_mmcv_ops
from .op_census import OpCensus, is_host_sync
from .pretrained import check_pretrained

__all__ = [
    'OpCensus', 'check_mmcv_ops', 'check_override_keys', 'check_pretrained',
    'is_host_sync', 'load_config'
]
