"""The optional fast layer of rfcn_mm.

:class:`FastRFCN` is :class:`rfcn_mm.models.RFCN` (the same modules, so
the same checkpoints) with fixed-shape training and inference and CUDA
graphs: ``model.type='FastRFCN'`` with ``train_cfg.fixed_shape`` /
``cuda_graph``, or :meth:`FastRFCN.optimize_for_inference` (what
:class:`RFCNFastInferenceHook` and ``tools/test.py --fast`` call).
:class:`BatchBucketPad` pads batches to a few shapes for the graphs.

This package imports the core (:mod:`rfcn_mm.models`, :mod:`rfcn_mm.ops`);
the core never imports it.
"""
from .batch_bucket_pad import BatchBucketPad
from .fast_inference_hook import RFCNFastInferenceHook
from .fast_rfcn import FastRFCN
from .graph_runners import CUDAGraphRunner, TrainGraphRunner

__all__ = [
    'FastRFCN', 'BatchBucketPad', 'RFCNFastInferenceHook', 'CUDAGraphRunner',
    'TrainGraphRunner'
]
