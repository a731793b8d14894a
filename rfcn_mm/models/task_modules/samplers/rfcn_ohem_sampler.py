from typing import Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import BaseSampler
from mmdet.registry import TASK_UTILS
from torch import Tensor

from rfcn_mm.ops import sorted_nms


@TASK_UTILS.register_module()
class RFCNOHEMSampler(BaseSampler):
    """Online hard example mining as R-FCN does it (Dai et al. 2016, Sec. 2).

    Sampling keeps every proposal of an image (plus the ground truth, when
    ``add_gt_as_proposals``); the RoI head then evaluates the loss of all of
    them in its one forward pass and calls :meth:`select`, which keeps the
    ``num`` RoIs with the highest loss per image, positives and negatives
    alike (no foreground quota). Only the kept RoIs get gradient.

    This differs from mmdet's ``OHEMSampler``, which ranks by classification
    loss alone, keeps a positive quota and runs a second forward pass of the
    head per image.

    Args:
        num (int): RoIs kept per image, B. Defaults to 128.
        nms_thr (float, optional): If set, RoIs are first suppressed by NMS
            over their boxes with their losses as scores (as the TF Object
            Detection API's miner can), so that near-duplicates do not crowd
            the batch. Defaults to None (off, as in the paper).
        add_gt_as_proposals (bool): Add ground-truth boxes to the candidate
            RoIs. Defaults to True.
    """

    def __init__(self,
                 num: int = 128,
                 nms_thr: Optional[float] = None,
                 add_gt_as_proposals: bool = True,
                 **kwargs) -> None:
        if num <= 0:
            raise ValueError(f'RFCNOHEMSampler: num must be positive, got '
                             f'{num}')
        super().__init__(
            num=num,
            pos_fraction=1.0,
            neg_pos_ub=-1,
            add_gt_as_proposals=add_gt_as_proposals)
        self.nms_thr = nms_thr

    def _sample_pos(self, assign_result: AssignResult, num_expected: int,
                    **kwargs) -> Tensor:
        """Every positive candidate: selection happens by loss later."""
        return torch.nonzero(assign_result.gt_inds > 0, as_tuple=False)[:, 0]

    def _sample_neg(self, assign_result: AssignResult, num_expected: int,
                    **kwargs) -> Tensor:
        """Every negative candidate."""
        return torch.nonzero(assign_result.gt_inds == 0, as_tuple=False)[:, 0]

    @torch.no_grad()
    def select_slots(self, losses: Tensor, candidates: Tensor,
                     boxes: Tensor) -> Tensor:
        """The mining rule, for images whose RoIs sit in slots of equal
        number: per image, the ``num`` candidates of highest loss (after
        NMS over the losses with ``nms_thr``). Shapes depend on the input
        shapes only and nothing is read back to the host, so the
        fixed-shape training of :mod:`rfcn_mm.fast` uses it as it is.

        Args:
            losses (Tensor): (N, M) loss of every slot.
            candidates (Tensor): (N, M) bool, the slots that hold a RoI.
            boxes (Tensor): (N, M, 4) the RoIs' boxes (used with
                ``nms_thr``).

        Returns:
            Tensor: (N, M) bool mask of the kept slots.
        """
        n, m = candidates.shape
        hard = losses.detach().float().masked_fill(~candidates, float('-inf'))
        order = hard.sort(dim=1, descending=True, stable=True)[1]
        num = min(self.num, m)
        if num == 0:
            return torch.zeros_like(candidates)
        if self.nms_thr is None:
            kept = torch.zeros_like(candidates).scatter_(
                1, order[:, :num], True)
            return kept & candidates
        rows = order[..., None].expand(-1, -1, 4)
        keep = sorted_nms(boxes.float().gather(1, rows),
                          candidates.gather(1, order), self.nms_thr, num)
        # slot m collects the padding (-1) of keep
        slots = order.gather(1, keep.clamp(min=0)).masked_fill(keep < 0, m)
        kept = torch.zeros(n, m + 1, dtype=torch.bool, device=order.device)
        return kept.scatter_(1, slots, True)[:, :m] & candidates

    @torch.no_grad()
    def select(self, losses: Tensor, rois: Tensor) -> Tensor:
        """Keep the ``num`` highest-loss RoIs of each image
        (:meth:`select_slots` on the RoIs of each image in slots).

        Args:
            losses (Tensor): Loss of every RoI, shape (R, ).
            rois (Tensor): The RoIs, shape (R, 5) with the image index in
                column 0.

        Returns:
            Tensor: Bool mask (R, ) of the kept RoIs.
        """
        if rois.size(0) == 0:
            return torch.zeros_like(losses, dtype=torch.bool)
        img = rois[:, 0].long()
        counts = torch.bincount(img)
        n, m = counts.numel(), int(counts.max())
        # position of each RoI among the RoIs of its image
        order = img.sort(stable=True)[1]
        starts = counts.cumsum(0) - counts
        slot = torch.empty_like(img)
        slot[order] = torch.arange(img.numel(), device=img.device) - \
            starts[img[order]]
        slot_losses = losses.new_zeros(n, m).float()
        slot_losses[img, slot] = losses.float()
        candidates = torch.zeros(n, m, dtype=torch.bool, device=img.device)
        candidates[img, slot] = True
        boxes = rois.new_zeros(n, m, 4)
        boxes[img, slot] = rois[:, 1:]
        return self.select_slots(slot_losses, candidates, boxes)[img, slot]

    @staticmethod
    def mean_over_kept(loss: Tensor, kept: Tensor) -> Tensor:
        """Mean of a per-RoI ``loss`` over the kept RoIs (0 when none is),
        so that the others get no gradient."""
        weight = kept.to(loss.dtype)
        return (loss * weight).sum() / weight.sum().clamp(min=1)
