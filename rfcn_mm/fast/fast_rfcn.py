import math
import warnings
from typing import Callable, List, Optional, Tuple, Union

import torch
from mmcv.cnn import fuse_conv_bn
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import InstanceData
from torch import Tensor
from torch.profiler import record_function

from rfcn_mm.models import RFCN, PSRoIHead
from .fixed_shape import (check_fixed_shape_support,
                          check_fixed_shape_train_support,
                          fixed_shape_detections, fixed_shape_proposals,
                          inside_image, pack_ground_truth, proposals_to_rois,
                          rcnn_loss, rcnn_slots, rpn_loss, slot_targets)
from .graph_runners import CUDAGraphRunner, TrainGraphRunner
from .optim_wrapper_steps import check_no_accumulation, step_after_backward

DTYPES = dict(
    float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16)


class _PoolFromScoreMaps:
    """A :class:`PSRoIHead` as mmdet's ``StandardRoIHead.predict_bbox``
    sees it when the features it is given are the score maps of
    :meth:`FastRFCN.dense_forward`: its ``_bbox_forward`` pools them
    instead of running conv5 and the score-map convs again."""

    def __init__(self, roi_head: PSRoIHead) -> None:
        self._roi_head = roi_head

    def __getattr__(self, name: str):
        return getattr(self._roi_head, name)

    def _bbox_forward(self, maps: Tuple[Tensor], rois: Tensor) -> dict:
        return self._roi_head.pool_and_vote(maps[0], rois)


@MODELS.register_module()
class FastRFCN(RFCN):
    """:class:`RFCN` with fixed-shape training and inference and CUDA
    graphs. The modules (and so the checkpoints) are :class:`RFCN`'s; until
    :meth:`optimize_for_inference` is called, and without
    ``train_cfg.fixed_shape``, it trains and predicts as :class:`RFCN`.

    Training: ``train_cfg.fixed_shape=True`` computes mmdet's losses with
    padded tensors and no host synchronisation (:meth:`fixed_shape_loss`),
    and ``train_cfg.cuda_graph=True`` on top of it replays forward and
    backward as a CUDA graph per recurring input shape (up to
    ``train_cfg.max_graphs``, default 4).

    Inference is split in two stages. The dense stage
    (:meth:`dense_forward`: backbone, RPN convs, conv5 and score maps) has
    shapes that depend on the input shape only; the sparse stage (proposal
    decoding and NMS, PS pooling, voting, post-processing) is data
    dependent. :meth:`optimize_for_inference` makes the dense stage fast
    (BatchNorm folded into the convs, channels_last, reduced precision)
    while the sparse stage stays in float32, and by default replaces the
    sparse stage by its fixed-shape equivalent (padded proposal and
    detection slots, :func:`rfcn_mm.ops.sorted_nms`), so that the whole of
    inference replays as one CUDA graph per input shape
    (:meth:`fixed_shape_forward`).
    """

    train_cfg_keys = ('fixed_shape', 'cuda_graph', 'max_graphs')

    def __init__(self, **kwargs) -> None:
        """:class:`RFCN`'s arguments."""
        super().__init__(**kwargs)
        self.inference_mode: Optional[dict] = None
        self._dense_dtype: Optional[torch.dtype] = None
        self._channels_last = False
        self._fixed_shape_post = False
        self._priors: dict = {}  # RPN anchors per (feature size, device)
        self._anchor_checks: set = set()  # image shapes with inside anchors
        # set by optimize_for_inference on a GPU: replays the dense stage,
        # or all of inference with fixed_shape_post
        self.graph_runner: Optional[CUDAGraphRunner] = None
        # replays forward + backward of training steps (train_cfg.cuda_graph)
        self.train_graph_runner: Optional[TrainGraphRunner] = None
        self._warned_graph_bypass = False
        if self.train_cfg is not None and self.train_cfg.get(
                'cuda_graph',
                False) and not self.train_cfg.get('fixed_shape', False):
            raise ValueError('train_cfg.cuda_graph=True needs '
                             'train_cfg.fixed_shape=True: mmdet\'s target '
                             'code reads values back to the host')
        if self.train_cfg is not None and self.train_cfg.get(
                'fixed_shape', False):
            check_fixed_shape_train_support(self)

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

    def _rpn_priors(self, featmap: Tensor) -> Tensor:
        """The RPN's float32 anchors for a feature map, cached: made outside
        CUDA graph capture (the anchor generator copies from the host)."""
        return self._rpn_anchor_grid(featmap)[0]

    def _rpn_anchor_grid(self, featmap: Tensor) -> Tuple[Tensor, Tensor]:
        """The RPN's float32 anchors (H * W * A, 4) for a feature map and the
        grid row and column (H * W * A, 2) of each, cached."""
        key = (tuple(featmap.shape[-2:]), featmap.device)
        if key not in self._priors:
            priors = self.rpn_head.prior_generator.grid_priors(
                [featmap.shape[-2:]],
                dtype=torch.float32,
                device=featmap.device)[0]
            h, w = featmap.shape[-2:]
            loc = torch.arange(
                priors.size(0), device=featmap.device) // (
                    priors.size(0) // (h * w))
            yx = torch.stack([loc // w, loc % w], dim=1).float()
            self._priors[key] = (priors, yx)
        return self._priors[key]

    def fixed_shape_forward(
            self, batch_inputs: Tensor,
            img_info: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """All of inference with shapes that depend on the input shape only
        (no host synchronisation), so that it can be one CUDA graph.

        Args:
            batch_inputs (Tensor): Images of shape (N, 3, H, W).
            img_info (Tensor): (N, 4) float32 per image: height and width of
                the image inside the padded batch, and the factors (x, y)
                applied to the detections (``1 / scale_factor`` to rescale
                them to the original image, or ones).

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: boxes (N, D, 4), scores
            (N, D), labels (N, D) and validity (N, D) of up to D =
            ``test_cfg.rcnn.max_per_img`` detections per image, valid ones
            first, in descending score order.
        """
        rpn_cls, rpn_reg, maps = self.dense_forward(batch_inputs)
        img_hw, rescale = img_info[:, :2], img_info[:, 2:]
        proposals, valid = fixed_shape_proposals(self.rpn_head, rpn_cls[0],
                                                 rpn_reg[0],
                                                 self._rpn_priors(rpn_cls[0]),
                                                 img_hw, self.test_cfg.rpn)
        rois = proposals_to_rois(proposals, valid)
        res = self.roi_head.pool_and_vote(maps, rois)
        return fixed_shape_detections(self.roi_head.bbox_head, rois, valid,
                                      res['cls_score'], res['bbox_pred'],
                                      img_hw, rescale, self.test_cfg.rcnn)

    def _predict_fixed_shape(self, batch_inputs: Tensor,
                             batch_data_samples: SampleList,
                             rescale: bool) -> SampleList:
        info = []
        for sample in batch_data_samples:
            h, w = sample.metainfo['img_shape'][:2]
            factors = (1.0, 1.0)
            if rescale:
                scale = sample.metainfo.get('scale_factor')
                if scale is None:
                    raise KeyError('predict(rescale=True) needs scale_factor '
                                   'in every data sample\'s metainfo')
                factors = (1 / scale[0], 1 / scale[1])
            info.append([h, w, *factors])
        img_info = torch.tensor(
            info, dtype=torch.float32, device=batch_inputs.device)
        run = self.fixed_shape_forward if self.graph_runner is None \
            else self.graph_runner
        with record_function('rfcn.fixed_shape'):
            boxes, scores, labels, valid = run(batch_inputs, img_info)
        results = []
        # the one host synchronisation of the batch
        for i, num in enumerate(valid.sum(1).tolist()):
            results.append(
                InstanceData(
                    bboxes=boxes[i, :num].clone(),
                    scores=scores[i, :num].clone(),
                    labels=labels[i, :num].clone()))
        return self.add_pred_to_datasample(batch_data_samples, results)

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detections of a batch: :class:`RFCN`'s until
        :meth:`optimize_for_inference`. Then the dense stage (replayed as a
        CUDA graph on a GPU) followed by proposals, PS pooling, voting and
        post-processing as in mmdet's two-stage detectors; or, with
        ``fixed_shape_post=True`` (the default), all of it as
        :meth:`fixed_shape_forward` (unless the samples bring their own
        proposals)."""
        if self.inference_mode is None:
            return super().predict(batch_inputs, batch_data_samples, rescale)
        if self._fixed_shape_post and \
                batch_data_samples[0].get('proposals', None) is None:
            return self._predict_fixed_shape(batch_inputs, batch_data_samples,
                                             rescale)
        dense = self.dense_forward if self.graph_runner is None \
            else self.graph_runner
        # named ranges for torch.profiler
        # (tools/analysis_tools/benchmark_detector.py)
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
            # mmdet's StandardRoIHead.predict_bbox, pooling the maps
            results_list = StandardRoIHead.predict_bbox(
                _PoolFromScoreMaps(self.roi_head), (maps, ),
                [s.metainfo for s in batch_data_samples],
                rpn_results_list,
                rcnn_test_cfg=self.roi_head.test_cfg,
                rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def optimize_for_inference(self,
                               dtype: Union[str, torch.dtype] = 'float32',
                               fuse_bn: bool = True,
                               channels_last: bool = True,
                               cuda_graph: Optional[bool] = None,
                               max_graphs: int = 16,
                               fixed_shape_post: bool = True) -> 'FastRFCN':
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
            cuda_graph (bool, optional): Replay the dense stage (all of
                inference with ``fixed_shape_post``) as a CUDA graph per
                recurring input shape (:class:`CUDAGraphRunner`). Defaults
                to True when the model is on a GPU.
            max_graphs (int): Input shapes whose graphs are kept at once.
                Defaults to 16.
            fixed_shape_post (bool): Run proposals and post-processing as
                :meth:`fixed_shape_forward`: the same detections as mmdet's
                code up to the order of equal scores, one host
                synchronisation per batch. Raises ValueError for test
                configs it does not reproduce (see
                :func:`check_fixed_shape_support`). Defaults to True.

        Returns:
            FastRFCN: ``self``, in eval mode.
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
        if fixed_shape_post:
            check_fixed_shape_support(self)
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
        self._fixed_shape_post = fixed_shape_post
        graphed = self.fixed_shape_forward if fixed_shape_post \
            else self.dense_forward
        self.graph_runner = CUDAGraphRunner(
            graphed, max_graphs=max_graphs) if cuda_graph else None
        self.inference_mode = dict(
            dtype=str(dtype).replace('torch.', ''),
            fuse_bn=fuse_bn,
            channels_last=channels_last,
            cuda_graph=cuda_graph,
            fixed_shape_post=fixed_shape_post)
        return self

    def fixed_shape_loss(self,
                         batch_inputs: Tensor,
                         img_info: Tensor,
                         gt_boxes: Tensor,
                         gt_labels: Tensor,
                         gt_valid: Tensor,
                         rpn_keys: Optional[Tensor] = None,
                         rcnn_keys: Optional[Tensor] = None) -> dict:
        """mmdet's two-stage training losses with shapes that depend on the
        input shape only (no host synchronisation; see
        :mod:`rfcn_mm.fast.fixed_shape`).

        Args:
            batch_inputs (Tensor): Images of shape (N, 3, H, W).
            img_info (Tensor): (N, 4) float32 per image: height and width of
                the image inside the padded batch, and the grid rows and
                columns of the RPN's map that its padded shape covers.
            gt_boxes (Tensor): (N, G, 4) ground-truth slots.
            gt_labels (Tensor): (N, G) int64 labels.
            gt_valid (Tensor): (N, G) validity of the slots.
            rpn_keys, rcnn_keys (Tensor, optional): Uniform random keys of
                the anchors (N, H' * W' * A) and of the RoI slots (N, G + P)
                that decide the random samples; drawn when not given.

        Returns:
            dict: The losses and the RoI accuracy under mmdet's names.
        """
        x = self.extract_feat(batch_inputs)
        rpn_cls, rpn_reg = self.rpn_head(x)
        cls, reg = rpn_cls[0], rpn_reg[0]
        priors, anchor_yx = self._rpn_anchor_grid(cls)
        losses = rpn_loss(self.rpn_head, cls, reg, priors, anchor_yx, img_info,
                          gt_boxes, gt_valid, self.train_cfg.rpn, rpn_keys)
        proposals, valid = fixed_shape_proposals(self.rpn_head,
                                                 cls.detach().float(),
                                                 reg.detach().float(), priors,
                                                 img_info[:, :2],
                                                 self.train_cfg.rpn_proposal)
        roi_head = self.roi_head
        sampler = roi_head.bbox_sampler
        priors, gt_inds, pos, neg = rcnn_slots(sampler, gt_boxes, gt_valid,
                                               proposals, valid,
                                               roi_head.bbox_assigner,
                                               rcnn_keys)
        head = roi_head.bbox_head
        sampled = pos | neg
        rois = proposals_to_rois(priors, sampled)
        res = roi_head._bbox_forward(x, rois)
        roi_targets = slot_targets(priors, gt_boxes, gt_labels, gt_inds, pos,
                                   neg, head.num_classes, head.bbox_coder,
                                   self.train_cfg.rcnn.get('pos_weight', -1))
        losses.update(
            rcnn_loss(head, sampler, res['cls_score'], res['bbox_pred'], rois,
                      *roi_targets, sampled))
        return losses

    def loss_inputs(self, batch_inputs: Tensor,
                    batch_data_samples: SampleList) -> tuple:
        """The tensors :meth:`fixed_shape_loss` takes, from a batch."""
        stride_w, stride_h = self.rpn_head.prior_generator.strides[0]
        info = []
        for sample in batch_data_samples:
            h, w = sample.metainfo['img_shape'][:2]
            pad_h, pad_w = sample.metainfo.get('pad_shape', (h, w))[:2]
            rows, cols = math.ceil(pad_h / stride_h), math.ceil(pad_w /
                                                                stride_w)
            self._check_anchors_inside(h, w, rows, cols)
            info.append([h, w, rows, cols])
        img_info = torch.tensor(
            info, dtype=torch.float32, device=batch_inputs.device)
        return (batch_inputs, img_info,
                *pack_ground_truth(batch_data_samples, batch_inputs.device))

    def _check_anchors_inside(self, h: int, w: int, rows: int,
                              cols: int) -> None:
        """mmdet's error for an image that no RPN anchor fits in (with
        ``train_cfg.rpn.allowed_border``), checked on the host from the
        image's shape, once per shape."""
        border = self.train_cfg.rpn.get('allowed_border', -1)
        key = (h, w, rows, cols, border)
        if border < 0 or key in self._anchor_checks:
            return
        anchors = self.rpn_head.prior_generator.grid_priors([(rows, cols)],
                                                            device='cpu')[0]
        if not inside_image(anchors, h, w, border).any():
            raise ValueError(
                f'no RPN anchor lies inside an image of {h}x{w} pixels '
                f'(train_cfg.rpn.allowed_border={border}); check the image '
                'size and anchor sizes, or set allowed_border to -1')
        self._anchor_checks.add(key)

    def _loss_and_backward(self, optim_wrapper) -> Callable:
        """The step :class:`TrainGraphRunner` replays: fixed-shape losses,
        summed by mmengine's ``parse_losses``, backward of the sum (scaled
        by the wrapper's AMP loss scaler, if any); returns the log
        variables detached."""
        scaler = getattr(optim_wrapper, 'loss_scaler', None)

        def step(*inputs: Tensor) -> dict:
            total, log_vars = self.parse_losses(self.fixed_shape_loss(*inputs))
            (total if scaler is None else scaler.scale(total)).backward()
            return {k: v.detach() for k, v in log_vars.items()}

        return step

    def train_step(self, data, optim_wrapper) -> dict:
        """mmengine's ``BaseModel.train_step``; with
        ``train_cfg.cuda_graph=True`` (and ``fixed_shape=True``), forward and
        backward replay as one CUDA graph per recurring input shape
        (:class:`TrainGraphRunner`, up to ``train_cfg.max_graphs``, default
        4) and the optimizer steps eagerly on the gradients they leave.
        Single-process training only: under DistributedDataParallel mmengine
        calls the wrapper's own ``train_step`` and this one is not used."""
        if not (self.train_cfg and self.train_cfg.get('cuda_graph', False)):
            return super().train_step(data, optim_wrapper)
        check_no_accumulation(optim_wrapper, 'train_cfg.cuda_graph=True')
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            inputs = self.loss_inputs(data['inputs'], data['data_samples'])
            if self.train_graph_runner is None:
                self.train_graph_runner = TrainGraphRunner(
                    self._loss_and_backward(optim_wrapper),
                    [p for p in self.parameters() if p.requires_grad],
                    max_graphs=self.train_cfg.get('max_graphs', 4))
            # clones: the graph's outputs are overwritten at the next replay
            log_vars = {
                k: v.clone()
                for k, v in self.train_graph_runner(*inputs).items()
            }
        step_after_backward(optim_wrapper)
        return log_vars

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """Training losses: mmdet's ``TwoStageDetector.loss``, or with
        ``train_cfg.fixed_shape=True`` the same losses from
        :meth:`fixed_shape_loss`."""
        if self.inference_mode is not None:
            raise RuntimeError(
                'this FastRFCN was prepared for inference by '
                f'optimize_for_inference({self.inference_mode}) and cannot '
                'be trained; build the model again to train it')
        if self.train_cfg and self.train_cfg.get('cuda_graph', False) \
                and not self._warned_graph_bypass:
            # train_step computes the graphed losses without this method
            self._warned_graph_bypass = True
            warnings.warn(
                'train_cfg.cuda_graph=True is not in effect: the losses were '
                'requested through FastRFCN.loss, not '
                'FastRFCN.train_step (under DistributedDataParallel '
                'mmengine runs the wrapper\'s own train_step); the '
                'fixed-shape losses run eagerly')
        if self.train_cfg and self.train_cfg.get('fixed_shape', False):
            return self.fixed_shape_loss(
                *self.loss_inputs(batch_inputs, batch_data_samples))
        return super().loss(batch_inputs, batch_data_samples)
