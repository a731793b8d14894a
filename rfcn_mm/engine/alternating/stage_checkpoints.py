"""Joining an RPN stage's and an R-FCN stage's weights into one model.

mmdet's ``RPN`` detector keeps its head as ``bbox_head``; in the R-FCN
(a ``TwoStageDetector``) the same head is ``rpn_head``. The shared layers
are the ``backbone`` (conv1 to conv4) of both; conv5 belongs to the R-FCN
head (``roi_head.shared_head``). The merge is a union, the R-FCN's weights
with the RPN's backbone and head, as Deformable-ConvNets' ``combine_model``
does for its alternating training.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

import torch

from rfcn_mm.utils.atomic_io import atomic_output
from rfcn_mm.utils.checkpoint_file import load_checkpoint_file

SHARED = 'backbone.'


class SharedLayersDifferError(ValueError):
    """The RPN and the R-FCN to merge do not share their conv1-conv4."""


def _state_dict(ckpt: dict, path: str) -> Dict[str, torch.Tensor]:
    state = ckpt.get('state_dict', ckpt)
    if not any(k.startswith(SHARED) for k in state):
        raise KeyError(f'{path} has no backbone.* weights: not a detector '
                       'checkpoint of this config')
    return state


def shared_layers_difference(a: Dict[str, torch.Tensor],
                             b: Dict[str, torch.Tensor]) -> Optional[str]:
    """The first shared-layer tensor (``backbone.*``, BatchNorm statistics
    included) that is missing from one state dict or differs in any bit,
    or None when they share them exactly."""
    keys_a = {k for k in a if k.startswith(SHARED)}
    keys_b = {k for k in b if k.startswith(SHARED)}
    if keys_a != keys_b:
        return sorted(keys_a ^ keys_b)[0]
    for key in sorted(keys_a):
        x, y = a[key], b[key]
        if x.shape != y.shape or x.dtype != y.dtype or not torch.equal(
                x, y):
            return key
    return None


def merge_stage_checkpoints(rpn_path: str,
                            rfcn_path: str,
                            out_path: str,
                            keep_rpn_head: bool = True,
                            require_shared: bool = True,
                            meta: Optional[dict] = None) -> dict:
    """Write ``out_path``: the R-FCN checkpoint's weights with the RPN
    checkpoint's backbone, plus (``keep_rpn_head``) its head renamed
    ``bbox_head.*`` -> ``rpn_head.*``.

    Args:
        rpn_path (str): Checkpoint of an RPN stage (mmdet's ``RPN``).
        rfcn_path (str): Checkpoint of an R-FCN stage (``rpn_head=None``).
        out_path (str): Where the merged checkpoint goes (atomically).
        keep_rpn_head (bool): Add the RPN head (the final model) or leave it
            out (the start of an R-FCN stage). Defaults to True.
        require_shared (bool): Refuse (:class:`SharedLayersDifferError`)
            unless both share conv1-conv4 bit for bit, as the final model of
            alternating training must. Defaults to True.
        meta (dict, optional): Recorded as the checkpoint's ``meta``, with
            the R-FCN checkpoint's ``dataset_meta`` (its classes).

    Returns:
        dict: The merged state dict.
    """
    rpn = _state_dict(load_checkpoint_file(rpn_path), rpn_path)
    rfcn_ckpt = load_checkpoint_file(rfcn_path)
    rfcn = _state_dict(rfcn_ckpt, rfcn_path)
    if not any(k.startswith('bbox_head.') for k in rpn):
        raise KeyError(f'{rpn_path} has no bbox_head.* weights: not the '
                       'checkpoint of an RPN stage (mmdet\'s RPN detector)')
    if any(k.startswith('rpn_head.') for k in rfcn) or not any(
            k.startswith('roi_head.') for k in rfcn):
        raise KeyError(f'{rfcn_path} is not the checkpoint of an R-FCN '
                       'stage (roi_head.* and no rpn_head.* expected)')
    if require_shared:
        key = shared_layers_difference(rpn, rfcn)
        if key is not None:
            raise SharedLayersDifferError(
                f'{rpn_path} and {rfcn_path} do not share conv1-conv4: '
                f'{key} differs; the final model of alternating training '
                'needs the stage that trains last with them frozen')
    merged = OrderedDict(
        (k, v) for k, v in rfcn.items() if not k.startswith(SHARED))
    merged.update((k, v) for k, v in rpn.items() if k.startswith(SHARED))
    if keep_rpn_head:
        merged.update(('rpn_head.' + k[len('bbox_head.'):], v)
                      for k, v in rpn.items() if k.startswith('bbox_head.'))
    merged = OrderedDict(sorted(merged.items()))
    meta = dict(meta or {})
    # the classes, which mmdet's inferencer reads from the checkpoint
    dataset_meta = rfcn_ckpt.get('meta', {}).get('dataset_meta')
    if dataset_meta is not None:
        meta.setdefault('dataset_meta', dataset_meta)
    meta.setdefault('merged_from', dict(
        rpn=osp.abspath(rpn_path), rfcn=osp.abspath(rfcn_path)))
    with atomic_output(out_path) as tmp:
        torch.save(dict(state_dict=merged, meta=meta), tmp)
    return merged
