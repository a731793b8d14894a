from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from .fast_rfcn import FastRFCN


@HOOKS.register_module()
class RFCNFastInferenceHook(Hook):
    """Call :meth:`FastRFCN.optimize_for_inference` before testing, after the
    checkpoint is loaded.

    For test runs only (the optimized model cannot be trained)::

        model = dict(type='FastRFCN', ...)  # loads RFCN's checkpoints
        custom_hooks = [dict(type='RFCNFastInferenceHook', dtype='bfloat16')]

    or ``tools/test.py CONFIG CHECKPOINT --fast``. Works through model
    wrappers (DDP) and mmdet's test-time augmentation model.

    Args:
        dtype (str): Precision of the dense stage, ``'float32'``,
            ``'float16'`` or ``'bfloat16'``. Defaults to ``'bfloat16'``.
        fuse_bn (bool): Fold BatchNorm into the convs. Defaults to True.
        channels_last (bool): NHWC dense stage. Defaults to True.
        cuda_graph (bool, optional): CUDA graph per input shape; defaults to
            True on a GPU.
        fixed_shape_post (bool): Proposals and post-processing in fixed
            shapes, so that all of inference is one CUDA graph (see
            :meth:`FastRFCN.optimize_for_inference`). Defaults to True.
        cudnn_benchmark (bool): Let cuDNN time its algorithms for each
            input shape (``torch.backends.cudnn.benchmark``), as the
            graphs are captured after warm-up runs. Defaults to True.
    """

    priority = 'VERY_LOW'  # after everything that touches the weights

    def __init__(self,
                 dtype: str = 'bfloat16',
                 fuse_bn: bool = True,
                 channels_last: bool = True,
                 cuda_graph: Optional[bool] = None,
                 fixed_shape_post: bool = True,
                 cudnn_benchmark: bool = True) -> None:
        self.cudnn_benchmark = cudnn_benchmark
        self.kwargs = dict(
            dtype=dtype,
            fuse_bn=fuse_bn,
            channels_last=channels_last,
            cuda_graph=cuda_graph,
            fixed_shape_post=fixed_shape_post)

    def before_test(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        detector = model
        while not isinstance(detector, FastRFCN) and \
                hasattr(detector, 'module'):  # DetTTAModel
            detector = detector.module
        if not isinstance(detector, FastRFCN):
            raise TypeError(
                'RFCNFastInferenceHook needs a FastRFCN model, got '
                f'{type(detector).__name__}: set model.type=\'FastRFCN\' '
                '(the same weights as RFCN, so its checkpoints load)')
        if self.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        detector.optimize_for_inference(**self.kwargs)
        self.detector = detector
        runner.logger.info(f'fast inference: {detector.inference_mode}')

    def after_test(self, runner) -> None:
        detector = getattr(self, 'detector', None)
        if detector is not None and detector.graph_runner is not None:
            runner.logger.info(
                f'fast inference, CUDA graphs: {detector.graph_runner}')
