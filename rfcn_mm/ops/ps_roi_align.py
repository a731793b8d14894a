from typing import Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._ext_loader import (check_grad_args, check_op_args, check_rois,
                          check_scalar_args, get_ext, normalize_output_size,
                          scalar_arg)

# rfcn_mm::ps_roi_align and rfcn_mm::_ps_roi_align_backward are declared and
# given their CPU and CUDA kernels in csrc/pytorch/ps_roi_align.cpp; here
# they get fake kernels (shapes for torch.compile and torch.export) and
# autograd.


def _ps_roi_align_fake(input: Tensor, rois: Tensor, pooled_h: int,
                       pooled_w: int, spatial_scale: float,
                       sampling_ratio: int, aligned: bool) -> Tensor:
    check_op_args(input, rois, (pooled_h, pooled_w), spatial_scale,
                  'ps_roi_align', sampling_ratio)
    return input.new_empty(
        (rois.size(0), input.size(1) // (pooled_h * pooled_w), pooled_h,
         pooled_w))


def _ps_roi_align_backward_fake(grad_output: Tensor, rois: Tensor,
                                batch: int, channels: int, height: int,
                                width: int, pooled_h: int, pooled_w: int,
                                spatial_scale: float, sampling_ratio: int,
                                aligned: bool) -> Tensor:
    check_grad_args(grad_output, rois, channels, (pooled_h, pooled_w),
                    'ps_roi_align')
    return grad_output.new_empty((batch, channels, height, width))


def _setup_context(ctx, inputs: tuple, output: Tensor) -> None:
    input, rois, pooled_h, pooled_w, scale, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois)
    ctx.args = (*input.shape, pooled_h, pooled_w, scale, sampling_ratio,
                aligned)


def _backward(ctx, grad_output: Tensor) -> tuple:
    rois, = ctx.saved_tensors
    grad_input = torch.ops.rfcn_mm._ps_roi_align_backward(
        grad_output.contiguous(), rois, *ctx.args)
    return grad_input, None, None, None, None, None, None


if get_ext(required=False) is not None:
    torch.library.register_fake('rfcn_mm::ps_roi_align', _ps_roi_align_fake)
    torch.library.register_fake('rfcn_mm::_ps_roi_align_backward',
                                _ps_roi_align_backward_fake)
    torch.library.register_autograd(
        'rfcn_mm::ps_roi_align', _backward, setup_context=_setup_context)


def ps_roi_align(input: Tensor,
                 rois: Tensor,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 2,
                 aligned: bool = True,
                 check_batch_idx: bool = True,
                 legacy: bool = False) -> Tensor:
    """Position-sensitive RoI Align (as in Light-Head R-CNN and the TF
    Object Detection API): :func:`ps_roi_pool` with each bin averaged over
    bilinearly interpolated samples instead of whole pixels.

    Args:
        input (Tensor): Score maps of shape (N, C * kh * kw, H, W).
        rois (Tensor): RoIs of shape (R, 5) as (batch_index, x1, y1, x2, y2)
            in image coordinates, same dtype and device as ``input``.
        output_size (int | tuple[int, int]): The bin grid k or (kh, kw).
        spatial_scale (float): Scale from image to ``input`` coordinates.
            Defaults to 1.0.
        sampling_ratio (int): Samples per bin along each axis; 0 picks
            ``ceil(roi_size / k)`` per RoI. Defaults to 2.
        aligned (bool): Shift boxes by -0.5 pixel so that pixel centres sit
            at integer + 0.5 (mmdet 3's and detectron2's convention); False
            keeps the legacy unshifted boxes and forces RoIs to at least 1x1.
            Defaults to True.
        check_batch_idx (bool): Raise ValueError for a batch index that is
            not in ``input`` or a non-finite coordinate (one host
            synchronisation on CUDA); see :func:`ps_roi_pool`. Defaults to
            True.
        legacy (bool): The reference implementation's coordinates
            (Deformable-ConvNets' ``DeformablePSROIPooling`` without
            offsets, the sampled counterpart of the reference's
            ``PSROIPooling``): rounded corners, ``+1`` on x2/y2, a -0.5
            shift, RoIs at least 0.1 map pixels wide, ``sampling_ratio``
            samples per axis at sub-bin corners, samples outside
            ``[-0.5, W - 0.5]`` skipped. ``aligned`` is then unused and
            ``sampling_ratio`` must be fixed (> 0). Computed by
            :func:`deform_ps_roi_pool` with ``offset=None, legacy=True``.
            Defaults to False.

    Returns:
        Tensor: Pooled scores of shape (R, C, kh, kw).

    Note:
        Channel layout is class-major as in :func:`ps_roi_pool`. Samples
        follow mmcv's ``roi_align`` border rule: more than one pixel outside
        the map they count as 0, otherwise they are clamped to the border.
        Every bin averages over all its samples (out-of-map ones included).
    """
    if legacy:
        return _legacy(input, rois, output_size, spatial_scale,
                       sampling_ratio, check_batch_idx)
    get_ext()
    output_size = normalize_output_size(output_size, 'ps_roi_align')
    spatial_scale = scalar_arg(spatial_scale, 'spatial_scale', float,
                               'ps_roi_align')
    sampling_ratio = scalar_arg(sampling_ratio, 'sampling_ratio', int,
                                'ps_roi_align')
    check_op_args(input, rois, output_size, spatial_scale, 'ps_roi_align',
                  sampling_ratio)
    if check_batch_idx:
        check_rois(rois, input.size(0), 'ps_roi_align')
    return torch.ops.rfcn_mm.ps_roi_align(input, rois, *output_size,
                                          spatial_scale, sampling_ratio,
                                          bool(aligned))


def _legacy(input: Tensor, rois: Tensor, output_size, spatial_scale,
            sampling_ratio, check_batch_idx: bool) -> Tensor:
    from .deform_ps_roi_pool import deform_ps_roi_pool
    output_size = normalize_output_size(output_size, 'ps_roi_align')
    spatial_scale = scalar_arg(spatial_scale, 'spatial_scale', float,
                               'ps_roi_align')
    sampling_ratio = scalar_arg(sampling_ratio, 'sampling_ratio', int,
                                'ps_roi_align')
    check_op_args(input, rois, output_size, spatial_scale, 'ps_roi_align',
                  sampling_ratio)
    if sampling_ratio < 1:
        raise ValueError(
            'ps_roi_align: legacy=True takes a fixed sampling_ratio (the '
            f'reference\'s sample_per_part), got {sampling_ratio}')
    return deform_ps_roi_pool(input, rois, None, output_size, spatial_scale,
                              sample_per_part=sampling_ratio, legacy=True,
                              check_batch_idx=check_batch_idx)


class PSRoIAlign(nn.Module):
    """Module form of :func:`ps_roi_align`.

    Args:
        output_size (int | tuple[int, int]): The bin grid k or (kh, kw).
        spatial_scale (float): Scale from image to feature coordinates.
            Defaults to 1.0.
        sampling_ratio (int): Samples per bin along each axis, 0 for
            adaptive. Defaults to 2.
        aligned (bool): Use the half-pixel shift. Defaults to True.
        check_batch_idx (bool): See :func:`ps_roi_align`. Defaults to True.
        legacy (bool): The reference's coordinates (see
            :func:`ps_roi_align`). Defaults to False.
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 2,
                 aligned: bool = True,
                 check_batch_idx: bool = True,
                 legacy: bool = False):
        super().__init__()
        self.output_size = normalize_output_size(output_size)
        self.spatial_scale = scalar_arg(spatial_scale, 'spatial_scale',
                                        float, 'PSRoIAlign')
        self.sampling_ratio = scalar_arg(sampling_ratio, 'sampling_ratio',
                                         int, 'PSRoIAlign')
        self.aligned = bool(aligned)
        self.check_batch_idx = bool(check_batch_idx)
        self.legacy = bool(legacy)
        check_scalar_args(self.output_size, self.spatial_scale,
                          self.sampling_ratio)
        if self.legacy and self.sampling_ratio < 1:
            raise ValueError('PSRoIAlign: legacy=True takes a fixed '
                             f'sampling_ratio, got {self.sampling_ratio}')

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        return ps_roi_align(input, rois, self.output_size, self.spatial_scale,
                            self.sampling_ratio, self.aligned,
                            self.check_batch_idx, self.legacy)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_size={self.output_size}, '
                f'spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, '
                f'aligned={self.aligned}'
                f'{", legacy=True" if self.legacy else ""})')
