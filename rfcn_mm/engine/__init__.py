from .hooks import FiniteLossHook, NumClassesCheckHook
from .iter_seeded_train_loop import IterSeededTrainLoop
from .work_dir_lock import WorkDirBusyError, WorkDirLock

__all__ = [
    'FiniteLossHook', 'IterSeededTrainLoop', 'NumClassesCheckHook',
    'WorkDirBusyError', 'WorkDirLock'
]
