from .atomic_io import atomic_output, atomic_write, remove_stale_temporaries
from .config import check_override_keys, load_config
from .mmcv_ops import check_mmcv_ops
from .op_census import OpCensus, is_host_sync
from .pretrained import check_pretrained

__all__ = [
    'OpCensus', 'atomic_output', 'atomic_write', 'check_mmcv_ops',
    'check_override_keys', 'check_pretrained', 'is_host_sync', 'load_config',
    'remove_stale_temporaries'
]
