"""Deployment of FastRFCN's fixed-shape inference: torch.export programs
(``.pt2``) and ONNX models in the standard opset
(``tools/deployment/export.py``).
The ONNX parts need the ``deploy`` extra (onnx, onnxruntime, onnxscript).
"""
from .export import (example_inputs, export_program, preprocessing,
                     save_program, to_onnx)
from .fixed_shape_detector import FixedShapeDetector
from .ps_roi_pool_sat import ps_roi_pool_by_summed_area

__all__ = [
    'FixedShapeDetector', 'export_program', 'save_program', 'to_onnx',
    'example_inputs', 'preprocessing', 'ps_roi_pool_by_summed_area'
]
