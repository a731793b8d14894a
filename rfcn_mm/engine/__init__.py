from .hooks import FiniteLossHook, NumClassesCheckHook
from .work_dir_lock import WorkDirBusyError, WorkDirLock

__all__ = [
    'FiniteLossHook', 'NumClassesCheckHook', 'WorkDirBusyError',
    'WorkDirLock'
]
