from typing import Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._ext_loader import (check_grad_args, check_op_args, check_rois,
                          check_scalar_args, get_ext, normalize_output_size,
                          scalar_arg)

# rfcn_mm::ps_roi_pool and rfcn_mm::_ps_roi_pool_backward are declared and
# given their CPU and CUDA kernels in csrc/pytorch/ps_roi_pool.cpp; here
# they get fake kernels (shapes for torch.compile and torch.export) and
# autograd.


def _ps_roi_pool_fake(input: Tensor,
                      rois: Tensor,
                      pooled_h: int,
                      pooled_w: int,
                      spatial_scale: float,
                      legacy: bool = False) -> Tensor:
    check_op_args(input, rois, (pooled_h, pooled_w), spatial_scale,
                  'ps_roi_pool')
    return input.new_empty(
        (rois.size(0), input.size(1) // (pooled_h * pooled_w), pooled_h,
         pooled_w))


def _ps_roi_pool_backward_fake(grad_output: Tensor, rois: Tensor, batch: int,
                               channels: int, height: int, width: int,
                               pooled_h: int, pooled_w: int,
                               spatial_scale: float,
                               legacy: bool = False) -> Tensor:
    check_grad_args(grad_output, rois, channels, (pooled_h, pooled_w),
                    'ps_roi_pool')
    return grad_output.new_empty((batch, channels, height, width))


def _setup_context(ctx, inputs: tuple, output: Tensor) -> None:
    input, rois, pooled_h, pooled_w, spatial_scale, legacy = inputs
    ctx.save_for_backward(rois)
    ctx.args = (*input.shape, pooled_h, pooled_w, spatial_scale, legacy)


def _backward(ctx, grad_output: Tensor) -> tuple:
    rois, = ctx.saved_tensors
    grad_input = torch.ops.rfcn_mm._ps_roi_pool_backward(
        grad_output.contiguous(), rois, *ctx.args)
    return grad_input, None, None, None, None, None


if get_ext(required=False) is not None:
    torch.library.register_fake('rfcn_mm::ps_roi_pool', _ps_roi_pool_fake)
    torch.library.register_fake('rfcn_mm::_ps_roi_pool_backward',
                                _ps_roi_pool_backward_fake)
    torch.library.register_autograd(
        'rfcn_mm::ps_roi_pool', _backward, setup_context=_setup_context)


def ps_roi_pool(input: Tensor,
                rois: Tensor,
                output_size: Union[int, Tuple[int, int]],
                spatial_scale: float = 1.0,
                check_batch_idx: bool = True,
                legacy: bool = False) -> Tensor:
    """Position-sensitive RoI pooling (R-FCN, Dai et al. 2016, Eq. 1).

    Bin (i, j) of an RoI averages only the score map assigned to that bin,
    so the output keeps where in the RoI a response came from.

    Args:
        input (Tensor): Score maps of shape (N, C * kh * kw, H, W).
        rois (Tensor): RoIs of shape (R, 5) as (batch_index, x1, y1, x2, y2)
            in image coordinates, same dtype and device as ``input``.
        output_size (int | tuple[int, int]): The bin grid k or (kh, kw).
        spatial_scale (float): Scale from image to ``input`` coordinates
            (1 / stride). Defaults to 1.0.
        check_batch_idx (bool): Raise ValueError for a batch index that is
            not in ``input`` or a non-finite coordinate (one host
            synchronisation on CUDA). Turn it off where RoIs are valid by
            construction; such RoIs then give 0. Defaults to True.
        legacy (bool): The RoI coordinates of the reference's PSROIPooling
            (caffe-rfcn, py-R-FCN, MXNet), for models trained with it:
            corners rounded to whole image pixels (half away from zero),
            x2/y2 inclusive (``end = (round(x2) + 1) * spatial_scale``), and
            an RoI at least 0.1 map pixels on a side; bins as below.
            Defaults to False.

    Returns:
        Tensor: Pooled scores of shape (R, C, kh, kw).

    Note:
        - Channel layout is class-major, as in every original
          implementation: output channel c, bin row i and column j read input
          channel ``c * kh * kw + i * kw + j``.
        - Boxes follow mmdet 3: continuous coordinates, x2/y2 exclusive, so
          a box spans [x1, x2) * spatial_scale on the map without the +1 of
          the Caffe op. An RoI of width w has bins of width w / kw; bin j
          covers the pixels ``floor(x1 + j * w / kw) <= x < ceil(x1 + (j + 1)
          * w / kw)`` (Eq. 1 with a continuous RoI corner), clipped to the
          map. There is no minimum RoI size.
        - A bin holding no pixel (zero-size RoI, or a bin outside the map)
          gives 0 and receives no gradient; forward and backward use the same
          bins everywhere, so gradcheck holds for any RoI.
        - float16/bfloat16 accumulate in float32.
    """
    get_ext()
    output_size = normalize_output_size(output_size, 'ps_roi_pool')
    spatial_scale = scalar_arg(spatial_scale, 'spatial_scale', float,
                               'ps_roi_pool')
    check_op_args(input, rois, output_size, spatial_scale, 'ps_roi_pool')
    if check_batch_idx:
        check_rois(rois, input.size(0), 'ps_roi_pool')
    return torch.ops.rfcn_mm.ps_roi_pool(input, rois, *output_size,
                                         spatial_scale, bool(legacy))


class PSRoIPool(nn.Module):
    """Module form of :func:`ps_roi_pool`.

    Args:
        output_size (int | tuple[int, int]): The bin grid k or (kh, kw).
        spatial_scale (float): Scale from image to feature coordinates.
            Defaults to 1.0.
        check_batch_idx (bool): See :func:`ps_roi_pool`. Defaults to True.
        legacy (bool): The reference's RoI coordinates (see
            :func:`ps_roi_pool`). Defaults to False.
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0,
                 check_batch_idx: bool = True,
                 legacy: bool = False):
        super().__init__()
        self.output_size = normalize_output_size(output_size)
        self.spatial_scale = scalar_arg(spatial_scale, 'spatial_scale',
                                        float, 'PSRoIPool')
        self.check_batch_idx = bool(check_batch_idx)
        self.legacy = bool(legacy)
        check_scalar_args(self.output_size, self.spatial_scale)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        return ps_roi_pool(input, rois, self.output_size, self.spatial_scale,
                           self.check_batch_idx, self.legacy)

    def __repr__(self) -> str:
        legacy = ', legacy=True' if self.legacy else ''
        return (f'{self.__class__.__name__}(output_size={self.output_size}, '
                f'spatial_scale={self.spatial_scale}{legacy})')
