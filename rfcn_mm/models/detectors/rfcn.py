from typing import List, Optional, Tuple, Union

import torch
from mmcv.cnn import fuse_conv_bn
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor
from torch.profiler import record_function

from ..roi_heads.ps_roi_head import ScoreMaps
from ..utils import CUDAGraphRunner

DTYPES = dict(
    float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16)


@MODELS.register_module()
class RFCN(TwoStageDetector):
    """`R-FCN <https://arxiv.org/abs/1605.06409>`_: region-based fully
    convolutional networks.

    A :class:`TwoStageDetector`: the backbone ends at conv4 (stride 16),
    whose features go to the RPN and to the RoI head; the RoI head runs the
    (dilated) conv5 stage on the whole map as its ``shared_head`` before the
    position-sensitive score maps (see :class:`PSRoIHead`). That keeps the
    paper's routing, "RPN on conv4, R-FCN on conv5", explicit in the config
    without changing mmdet's training path.

    Inference is split in two stages. The dense stage
    (:meth:`dense_forward`: backbone, RPN convs, conv5 and score maps) has
    shapes that depend on the input shape only; the sparse stage (proposal
    decoding and NMS, PS pooling, voting, post-processing) is data
    dependent. :meth:`optimize_for_inference` makes the dense stage fast
    (BatchNorm folded into the convs, channels_last, reduced precision, a
    CUDA graph per input shape) while the sparse stage stays in float32.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
            data_preprocessor=data_preprocessor)
        self.inference_mode: Optional[dict] = None
        self._dense_dtype: Optional[torch.dtype] = None
        self._channels_last = False
        # set by optimize_for_inference on a GPU: replays the dense stage
        self.graph_runner: Optional[CUDAGraphRunner] = None

    def dense_forward(
            self,
            batch_inputs: Tensor) -> Tuple[List[Tensor], List[Tensor], Tensor]:
        """The input-shape-only part of inference.

        Args:
            batch_inputs (Tensor): Images of shape (N, 3, H, W).

        Returns:
            tuple: RPN class scores and box deltas (lists with one level)
            and the whole-image score maps, all float32 and contiguous
            (NCHW) whatever the dense stage's precision and layout.
        """
        if self._dense_dtype is not None or self._channels_last:
            batch_inputs = batch_inputs.to(
                dtype=self._dense_dtype or batch_inputs.dtype,
                memory_format=torch.channels_last
                if self._channels_last else torch.contiguous_format)
        x = self.extract_feat(batch_inputs)
        rpn_cls, rpn_reg = self.rpn_head(x)
        maps = self.roi_head.score_maps(x)

        def out(t: Tensor) -> Tensor:
            return t.to(torch.float32, memory_format=torch.contiguous_format)

        return [out(t) for t in rpn_cls], [out(t) for t in rpn_reg], out(maps)

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detections of a batch: the dense stage (replayed as a CUDA graph
        after :meth:`optimize_for_inference`), then proposals, PS pooling,
        voting and post-processing as in mmdet's two-stage detectors."""
        assert self.with_bbox, 'Bbox head must be implemented.'
        dense = self.dense_forward if self.graph_runner is None \
            else self.graph_runner
        # named ranges for torch.profiler (tools/benchmark_detector.py)
        with record_function('rfcn.dense'):
            rpn_cls, rpn_reg, maps = dense(batch_inputs)
        with record_function('rfcn.proposals'):
            if batch_data_samples[0].get('proposals', None) is None:
                rpn_results_list = self.rpn_head.predict_by_feat(
                    rpn_cls,
                    rpn_reg,
                    batch_img_metas=[s.metainfo for s in batch_data_samples],
                    rescale=False)
            else:
                rpn_results_list = [s.proposals for s in batch_data_samples]
        with record_function('rfcn.roi_head'):
            results_list = self.roi_head.predict(
                ScoreMaps((maps, )),
                rpn_results_list,
                batch_data_samples,
                rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def optimize_for_inference(self,
                               dtype: Union[str, torch.dtype] = 'float32',
                               fuse_bn: bool = True,
                               channels_last: bool = True,
                               cuda_graph: Optional[bool] = None,
                               max_graphs: int = 16) -> 'RFCN':
        """Make :meth:`predict` fast; the model can no longer be trained.

        Args:
            dtype (str | torch.dtype): Precision of the dense stage's weights
                and activations: ``'float32'``, ``'float16'`` or
                ``'bfloat16'``. Its outputs are cast back to float32, so the
                RPN's box decoding, PS pooling and post-processing keep full
                precision. Defaults to ``'float32'``.
            fuse_bn (bool): Fold every BatchNorm that follows a conv into the
                conv (mmcv's ``fuse_conv_bn``, with the running statistics).
                Defaults to True.
            channels_last (bool): NHWC layout for the dense stage.
                Defaults to True.
            cuda_graph (bool, optional): Replay the dense stage as a CUDA
                graph per recurring input shape (:class:`CUDAGraphRunner`).
                Defaults to True when the model is on a GPU.
            max_graphs (int): Input shapes whose graphs are kept at once.
                Defaults to 16.

        Returns:
            RFCN: ``self``, in eval mode.
        """
        dtype = DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
        if dtype not in DTYPES.values():
            raise ValueError(f'dtype must be one of {sorted(DTYPES)}, '
                             f'got {dtype!r}')
        on_gpu = next(self.parameters()).is_cuda
        if cuda_graph is None:
            cuda_graph = on_gpu
        if cuda_graph and not on_gpu:
            raise ValueError('cuda_graph=True needs the model on a GPU; move '
                             'it there first (model.cuda())')
        self.eval()
        dense = [self.backbone, self.rpn_head, self.roi_head]
        if self.with_neck:
            dense.append(self.neck)
        for module in dense:
            if fuse_bn:
                fuse_conv_bn(module)
            module.to(dtype=dtype)
            if channels_last:
                module.to(memory_format=torch.channels_last)
        self._dense_dtype = None if dtype == torch.float32 else dtype
        self._channels_last = channels_last
        self.graph_runner = CUDAGraphRunner(
            self.dense_forward, max_graphs=max_graphs) if cuda_graph else None
        self.inference_mode = dict(
            dtype=str(dtype).replace('torch.', ''),
            fuse_bn=fuse_bn,
            channels_last=channels_last,
            cuda_graph=cuda_graph)
        return self

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        if self.inference_mode is not None:
            raise RuntimeError(
                'this R-FCN was prepared for inference by '
                f'optimize_for_inference({self.inference_mode}) and cannot '
                'be trained; build the model again to train it')
        return super().loss(batch_inputs, batch_data_samples)
