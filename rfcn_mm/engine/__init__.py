from .hooks import RFCNFastInferenceHook

__all__ = ['RFCNFastInferenceHook']
