from typing import Optional

import torch
from mmcv.ops import nms
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import BaseSampler
from mmdet.registry import TASK_UTILS
from torch import Tensor


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
    def select(self, losses: Tensor, rois: Tensor) -> Tensor:
        """Keep the ``num`` highest-loss RoIs of each image.

        Args:
            losses (Tensor): Loss of every RoI, shape (R, ).
            rois (Tensor): The RoIs, shape (R, 5) with the image index in
                column 0.

        Returns:
            Tensor: Bool mask (R, ) of the kept RoIs.
        """
        keep = torch.zeros_like(losses, dtype=torch.bool)
        for img_id in rois[:, 0].unique():
            inds = torch.nonzero(rois[:, 0] == img_id, as_tuple=False)[:, 0]
            img_losses = losses[inds]
            if self.nms_thr is not None:
                _, order = nms(rois[inds, 1:].float(), img_losses.float(),
                               self.nms_thr)
                # nms returns survivors sorted by loss
                order = order[:self.num]
            else:
                k = min(self.num, inds.numel())
                order = img_losses.topk(k, sorted=False).indices
            keep[inds[order]] = True
        return keep
