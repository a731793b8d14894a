import math
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._ext_loader import (MAX_SAMPLES, check_grad_args, check_op_args,
                          check_rois, dtype_name, get_ext,
                          normalize_output_size, scalar_arg)

# rfcn_mm::deform_ps_roi_pool and its backward are declared and given their
# kernels in csrc/pytorch/deform_ps_roi_pool.cpp; here they get fake
# kernels and autograd.
OP = 'deform_ps_roi_pool'


def check_deform_args(input: Tensor, rois: Tensor, offset: Optional[Tensor],
                      output_size: tuple, spatial_scale: float,
                      part_size: tuple, sample_per_part: int,
                      trans_std: float) -> None:
    """The op's argument checks (the C++ kernels repeat them with the same
    messages and exception types)."""
    check_op_args(input, rois, output_size, spatial_scale, OP)
    if min(part_size) <= 0:
        raise ValueError(f'{OP}: part_size must be positive, got '
                         f'({part_size[0]}, {part_size[1]})')
    if sample_per_part <= 0:
        raise ValueError(f'{OP}: sample_per_part must be positive, got '
                         f'{sample_per_part}')
    if sample_per_part > MAX_SAMPLES:
        raise ValueError(f'{OP}: sample_per_part must be at most '
                         f'{MAX_SAMPLES} ({MAX_SAMPLES} x {MAX_SAMPLES} '
                         f'samples per bin), got {sample_per_part}')
    if not math.isfinite(trans_std):
        raise ValueError(f'{OP}: trans_std must be finite, got '
                         f'{trans_std:g}')
    if offset is None:
        return
    channels_out = input.size(1) // (output_size[0] * output_size[1])
    if not (offset.dim() == 4 and offset.size(0) == rois.size(0)
            and offset.size(1) % 2 == 0 and offset.size(1) > 0
            and tuple(offset.shape[2:]) == tuple(part_size)):
        raise ValueError(
            f'{OP}: offset must be shaped (R, 2 * groups, part_h, part_w) = '
            f'({rois.size(0)}, 2 * groups, {part_size[0]}, {part_size[1]}), '
            f'got shape {list(offset.shape)}')
    if channels_out % (offset.size(1) // 2):
        raise ValueError(f'{OP}: offset groups ({offset.size(1) // 2}) must '
                         f'divide the output channels ({channels_out})')
    if offset.device != input.device:
        raise ValueError(f'{OP}: input and offset must be on the same '
                         f'device, got {input.device} and {offset.device}')
    if offset.dtype != input.dtype:
        raise TypeError(f'{OP}: input and offset must have the same dtype, '
                        f'got {dtype_name(input.dtype)} and '
                        f'{dtype_name(offset.dtype)}')


def _fake(input, rois, offset, pooled_h, pooled_w, spatial_scale, part_h,
          part_w, sample_per_part, trans_std, legacy):
    check_deform_args(input, rois, offset, (pooled_h, pooled_w),
                      spatial_scale, (part_h, part_w), sample_per_part,
                      trans_std)
    return input.new_empty(
        (rois.size(0), input.size(1) // (pooled_h * pooled_w), pooled_h,
         pooled_w))


def _backward_fake(grad_output, input, rois, offset, pooled_h, pooled_w,
                   spatial_scale, part_h, part_w, sample_per_part, trans_std,
                   legacy):
    check_deform_args(input, rois, offset, (pooled_h, pooled_w),
                      spatial_scale, (part_h, part_w), sample_per_part,
                      trans_std)
    check_grad_args(grad_output, rois, input.size(1), (pooled_h, pooled_w),
                    OP)
    grad_offset = offset.new_empty(offset.shape) if offset is not None \
        else input.new_empty((0, ))
    return input.new_empty(input.shape), grad_offset


def _setup_context(ctx, inputs: tuple, output: Tensor) -> None:
    input, rois, offset = inputs[:3]
    ctx.with_offset = offset is not None
    ctx.save_for_backward(input, rois,
                          offset if offset is not None else input[:0])
    ctx.args = inputs[3:]


def _backward(ctx, grad_output: Tensor) -> tuple:
    input, rois, offset = ctx.saved_tensors
    grad_input, grad_offset = torch.ops.rfcn_mm._deform_ps_roi_pool_backward(
        grad_output.contiguous(), input, rois,
        offset if ctx.with_offset else None, *ctx.args)
    return (grad_input, None, grad_offset if ctx.with_offset else None,
            *([None] * len(ctx.args)))


if get_ext(required=False) is not None:
    torch.library.register_fake('rfcn_mm::deform_ps_roi_pool', _fake)
    torch.library.register_fake('rfcn_mm::_deform_ps_roi_pool_backward',
                                _backward_fake)
    torch.library.register_autograd(
        'rfcn_mm::deform_ps_roi_pool', _backward,
        setup_context=_setup_context)


def deform_ps_roi_pool(input: Tensor,
                       rois: Tensor,
                       offset: Optional[Tensor],
                       output_size: Union[int, Tuple[int, int]],
                       spatial_scale: float = 1.0,
                       part_size: Optional[Union[int, Tuple[int, int]]] = None,
                       sample_per_part: int = 4,
                       trans_std: float = 0.1,
                       legacy: bool = False,
                       check_batch_idx: bool = True) -> Tensor:
    """Deformable position-sensitive RoI pooling (Deformable R-FCN, Dai et
    al. 2017).

    Bin (i, j) of an RoI is moved by its learned offset, in units of the
    RoI's size (the paper's Δp = γ · Δp̂ ∘ (w, h), γ = ``trans_std``), and
    averages ``sample_per_part``² bilinear samples of the score map
    assigned to that bin (R-FCN's class-major layout: output channel c,
    bin (i, j) reads input channel ``(c * kh + i) * kw + j``). The offset
    of a bin is read from cell ``(i * part_h // kh, j * part_w // kw)`` of
    its offset group's two channels (x then y); output channel c belongs
    to group ``c * groups // C``.

    Two coordinate modes:

    - ``legacy=False`` (default): mmdet 3's continuous boxes, as the rest
      of rfcn_mm: the RoI spans ``[x1, x2) * spatial_scale - 0.5`` on the
      map (no minimum size), samples sit at sub-bin centres and follow
      :func:`ps_roi_align`'s border rule (beyond a pixel outside the map a
      sample counts as 0; every bin averages all its samples). With zero
      offsets this is exactly ``ps_roi_align(..., sampling_ratio=
      sample_per_part, aligned=True)``, so an untrained deformable head
      starts from the plain head. The default for that reason, and because
      the RPN's boxes are continuous.
    - ``legacy=True``: the reference implementation's (Deformable-ConvNets'
      ``DeformablePSROIPooling``) coordinates, reproduced exactly: rounded
      corners, ``+1`` on x2/y2, a -0.5 shift, RoIs at least 0.1 map pixels
      wide, samples at sub-bin corners; a sample outside ``[-0.5, W -
      0.5]`` is skipped and the bin averages the others (0 if none).

    Gradients flow to ``input`` and ``offset`` (none to ``rois``). The
    bilinear neighbours are ``x_low`` and ``x_low + 1`` (torchvision's
    choice; the reference uses ``floor``/``ceil``), which gives the same
    values everywhere and, at integer sample positions, the right-hand
    derivative for the offsets instead of 0. float16/bfloat16 accumulate
    in float32.

    Args:
        input (Tensor): Score maps (N, C * kh * kw, H, W).
        rois (Tensor): (R, 5) RoIs (batch_index, x1, y1, x2, y2) in image
            coordinates, same dtype and device as ``input``.
        offset (Tensor, optional): (R, 2 * groups, part_h, part_w)
            normalised offsets; None pools without offsets (the mode the
            deformable head uses to pool its offset maps).
        output_size (int | tuple[int, int]): The bin grid k or (kh, kw).
        spatial_scale (float): Image to map scale. Defaults to 1.0.
        part_size (int | tuple[int, int], optional): The offset grid;
            defaults to ``output_size``.
        sample_per_part (int): Samples per bin along each axis. Defaults
            to 4 (the reference's R-FCN setting).
        trans_std (float): γ, the scale of the offsets. Defaults to 0.1.
        legacy (bool): The reference's coordinates (see above). Defaults
            to False.
        check_batch_idx (bool): As in :func:`ps_roi_pool`. Defaults to True.

    Returns:
        Tensor: (R, C, kh, kw).
    """
    get_ext()
    output_size = normalize_output_size(output_size, OP)
    part_size = output_size if part_size is None else normalize_output_size(
        part_size, OP)
    spatial_scale = scalar_arg(spatial_scale, 'spatial_scale', float, OP)
    sample_per_part = scalar_arg(sample_per_part, 'sample_per_part', int, OP)
    trans_std = scalar_arg(trans_std, 'trans_std', float, OP)
    if offset is not None and not isinstance(offset, Tensor):
        raise TypeError(f'{OP}: offset must be a tensor or None, got '
                        f'{type(offset).__name__}')
    check_deform_args(input, rois, offset, output_size, spatial_scale,
                      part_size, sample_per_part, trans_std)
    if check_batch_idx:
        check_rois(rois, input.size(0), OP)
    return torch.ops.rfcn_mm.deform_ps_roi_pool(input, rois, offset,
                                                *output_size, spatial_scale,
                                                *part_size, sample_per_part,
                                                trans_std, bool(legacy))


class DeformPSRoIPool(nn.Module):
    """Module form of :func:`deform_ps_roi_pool`; ``forward(input, rois,
    offset=None)``."""

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0,
                 part_size: Optional[Union[int, Tuple[int, int]]] = None,
                 sample_per_part: int = 4,
                 trans_std: float = 0.1,
                 legacy: bool = False,
                 check_batch_idx: bool = True) -> None:
        super().__init__()
        self.output_size = normalize_output_size(output_size)
        self.part_size = self.output_size if part_size is None else \
            normalize_output_size(part_size)
        self.spatial_scale = scalar_arg(spatial_scale, 'spatial_scale',
                                        float, 'DeformPSRoIPool')
        self.sample_per_part = scalar_arg(sample_per_part, 'sample_per_part',
                                          int, 'DeformPSRoIPool')
        self.trans_std = scalar_arg(trans_std, 'trans_std', float,
                                    'DeformPSRoIPool')
        self.legacy = bool(legacy)
        self.check_batch_idx = bool(check_batch_idx)
        if min(self.output_size) <= 0 or min(self.part_size) <= 0 or \
                self.sample_per_part <= 0 or not self.spatial_scale > 0:
            raise ValueError(
                'DeformPSRoIPool: output_size, part_size, sample_per_part '
                'and spatial_scale must be positive, got '
                f'{self.output_size}, {self.part_size}, '
                f'{self.sample_per_part}, {self.spatial_scale}')

    def forward(self,
                input: Tensor,
                rois: Tensor,
                offset: Optional[Tensor] = None) -> Tensor:
        return deform_ps_roi_pool(input, rois, offset, self.output_size,
                                  self.spatial_scale, self.part_size,
                                  self.sample_per_part, self.trans_std,
                                  self.legacy, self.check_batch_idx)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_size={self.output_size}, '
                f'spatial_scale={self.spatial_scale}, part_size='
                f'{self.part_size}, sample_per_part={self.sample_per_part}, '
                f'trans_std={self.trans_std}, legacy={self.legacy})')
