from .fast_inference_hook import RFCNFastInferenceHook

__all__ = ['RFCNFastInferenceHook']
