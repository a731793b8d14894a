from .hooks import FiniteLossHook, NumClassesCheckHook

__all__ = ['FiniteLossHook', 'NumClassesCheckHook']
