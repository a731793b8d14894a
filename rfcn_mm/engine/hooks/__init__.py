from .finite_loss_hook import FiniteLossHook
from .num_classes_check_hook import NumClassesCheckHook

__all__ = ['FiniteLossHook', 'NumClassesCheckHook']
