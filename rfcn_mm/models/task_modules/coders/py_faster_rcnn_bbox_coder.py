from typing import Optional, Sequence, Union

import torch
from mmdet.models.task_modules.coders.base_bbox_coder import BaseBBoxCoder
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes, get_box_tensor
from torch import Tensor


@TASK_UTILS.register_module()
class PyFasterRCNNBBoxCoder(BaseBBoxCoder):
    """Box deltas as py-faster-rcnn's ``bbox_transform`` and
    ``bbox_transform_inv`` compute them (py-R-FCN), or Deformable-ConvNets'
    ``nonlinear_transform`` and ``nonlinear_pred``, for models trained with
    them.

    Widths and heights count the end pixel (``w = x2 - x1 + 1``). In
    py-faster-rcnn's style a box's centre is ``x1 + 0.5 * w`` and a decoded
    box is ``ctr -/+ 0.5 * w'`` (so its new width is ``w' + 1`` in the same
    count). Deformable-ConvNets (and MXNet's ``contrib.Proposal``) centre
    boxes on ``x1 + 0.5 * (w - 1)`` and decode to ``ctr -/+ 0.5 * (w' -
    1)``: the same deltas, the same ``x1``, but ``x2`` one pixel less.
    Decoded boxes are clipped to ``[0, W - 1] x [0, H - 1]`` when
    ``max_shape`` is given.

    Args:
        target_means, target_stds (Sequence[float]): Normalisation of the
            deltas (decode: ``d * std + mean``). Defaults to 0 and 1: the
            reference folds them into the saved weights.
        max_log_ratio (float, optional): Clamp of ``dw``/``dh`` before the
            exponential; None (the reference's behaviour) leaves them as
            they are. mmdet's ``wh_ratio_clip`` argument of :meth:`decode`
            is accepted and ignored.
        style (str): ``'py-faster-rcnn'`` (py-R-FCN's models) or
            ``'deformable-convnets'`` (Deformable-ConvNets' models).
            Defaults to ``'py-faster-rcnn'``.
    """

    STYLES = ('py-faster-rcnn', 'deformable-convnets')

    def __init__(self,
                 target_means: Sequence[float] = (0., 0., 0., 0.),
                 target_stds: Sequence[float] = (1., 1., 1., 1.),
                 max_log_ratio: Optional[float] = None,
                 style: str = 'py-faster-rcnn',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if style not in self.STYLES:
            raise ValueError(f'PyFasterRCNNBBoxCoder: style={style!r}; '
                             f'known: {list(self.STYLES)}')
        # the decoded box's x2 - x1 is w' (py-faster-rcnn) or w' - 1
        self.end = 0.0 if style == 'py-faster-rcnn' else 1.0
        self.style = style
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        if len(self.means) != 4 or len(self.stds) != 4:
            raise ValueError('PyFasterRCNNBBoxCoder: target_means and '
                             'target_stds take 4 values (dx, dy, dw, dh)')
        self.max_log_ratio = max_log_ratio

    @staticmethod
    def _whctr(boxes: Tensor) -> tuple:
        w = boxes[..., 2] - boxes[..., 0] + 1
        h = boxes[..., 3] - boxes[..., 1] + 1
        return w, h, boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h

    def encode(self, bboxes: Union[Tensor, BaseBoxes],
               gt_bboxes: Union[Tensor, BaseBoxes]) -> Tensor:
        """Deltas (dx, dy, dw, dh) from ``bboxes`` to ``gt_bboxes``
        (``bbox_transform``), normalised by the means and stds."""
        bboxes, gt_bboxes = get_box_tensor(bboxes), get_box_tensor(gt_bboxes)
        ew, eh, ex, ey = self._whctr(bboxes)
        gw, gh, gx, gy = self._whctr(gt_bboxes)
        deltas = torch.stack([(gx - ex) / ew, (gy - ey) / eh,
                              torch.log(gw / ew),
                              torch.log(gh / eh)], -1)
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        return (deltas - means) / stds

    def decode(self,
               bboxes: Union[Tensor, BaseBoxes],
               pred_bboxes: Tensor,
               max_shape: Optional[Sequence[int]] = None,
               wh_ratio_clip: Optional[float] = None
               ) -> Union[Tensor, BaseBoxes]:
        """Boxes from ``bboxes`` moved by ``pred_bboxes`` (``(..., 4 * n)``
        deltas; ``bbox_transform_inv`` then ``clip_boxes``)."""
        bboxes = get_box_tensor(bboxes)
        reps = pred_bboxes.size(-1) // 4
        deltas = pred_bboxes.view(*pred_bboxes.shape[:-1], reps, 4)
        deltas = deltas * deltas.new_tensor(self.stds) + deltas.new_tensor(
            self.means)
        w, h, cx, cy = (t[..., None] for t in self._whctr(bboxes))
        dx, dy, dw, dh = deltas.unbind(-1)
        if self.max_log_ratio is not None:
            dw = dw.clamp(max=self.max_log_ratio)
            dh = dh.clamp(max=self.max_log_ratio)
        px, py = dx * w + cx, dy * h + cy
        pw, ph = torch.exp(dw) * w, torch.exp(dh) * h
        if self.end:  # centres at x1 + 0.5 (w - 1): half a pixel less
            px, py = px - 0.5, py - 0.5
        pw, ph = pw - self.end, ph - self.end
        out = torch.stack(
            [px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], -1)
        if max_shape is not None:
            height, width = max_shape[:2]
            out[..., 0::2] = out[..., 0::2].clamp(0, width - 1)
            out[..., 1::2] = out[..., 1::2].clamp(0, height - 1)
        out = out.view(pred_bboxes.shape)
        if self.use_box_type:
            out = HorizontalBoxes(out)
        return out
