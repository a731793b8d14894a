from .hooks import FiniteLossHook, NumClassesCheckHook, RFCNFastInferenceHook

__all__ = ['FiniteLossHook', 'NumClassesCheckHook', 'RFCNFastInferenceHook']
