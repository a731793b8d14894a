"""Deformable convolution with the border rule of Deformable ConvNets v1
(Dai et al. 2017; MXNet's ``contrib.DeformableConvolution``), the
convolution of the released Deformable R-FCN.

mmcv's :class:`~mmcv.ops.DeformConv2d` moves the samples the same way
(same offset layout: per deformable group, (dy, dx) for each kernel point
in row-major order) but treats the map's border as later implementations
do: a sample within one pixel outside the map blends the border pixels
with zeros. The reference instead

- reads 0 for a sample at ``y < 0`` or ``x < 0`` or ``y >= H`` or
  ``x >= W`` (no blending with the outside), and
- reads row ``H - 1`` (column ``W - 1``) unblended for ``H - 1 <= y < H``
  (``W - 1 <= x < W``).

Inside the map both are the same bilinear interpolation. Models trained
with the reference need its rule to give its outputs; this is a pure
PyTorch implementation (gathers and one matrix product), differentiable
with respect to the input, the offsets and the weights, for CPU and CUDA.
"""
from typing import Tuple, Union

import torch
from mmcv.ops import DeformConv2dPack
from mmengine.registry import MODELS
from torch import Tensor
from torch.nn.modules.utils import _pair


def _axis_samples(pos: Tensor, size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Low and high neighbours and the weight of the high one along one
    axis, with the reference's clamp at the last row/column."""
    low = torch.floor(pos)
    last = low >= size - 1
    low = torch.where(last, torch.full_like(low, size - 1), low)
    frac = torch.where(last, torch.zeros_like(pos), pos - low)
    high = torch.where(last, low, low + 1)
    # indices of samples that read nothing are clamped (their value is
    # masked out) so that every gather stays inside the map
    low = low.clamp(0, size - 1).long()
    high = high.clamp(0, size - 1).long()
    return low, high, frac


def legacy_deform_conv2d(input: Tensor,
                         offset: Tensor,
                         weight: Tensor,
                         stride: Union[int, Tuple[int, int]] = 1,
                         padding: Union[int, Tuple[int, int]] = 0,
                         dilation: Union[int, Tuple[int, int]] = 1,
                         deform_groups: int = 1) -> Tensor:
    """Deformable convolution (no bias, ``groups=1``) with the reference's
    border rule (see the module docstring).

    Args:
        input (Tensor): (N, C, H, W).
        offset (Tensor): (N, 2 * deform_groups * kh * kw, Ho, Wo): for group
            g and kernel point (i, j), channel ``2 * (g * kh * kw + i * kw +
            j)`` moves the sample down, the next one right.
        weight (Tensor): (O, C, kh, kw).
        stride, padding, dilation (int | tuple[int, int]): As
            :func:`torch.nn.functional.conv2d`'s.
        deform_groups (int): Channel groups with their own offsets.

    Returns:
        Tensor: (N, O, Ho, Wo).
    """
    n, channels, height, width = input.shape
    out_channels, in_channels, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    if in_channels != channels:
        raise ValueError(f'legacy_deform_conv2d: weight takes {in_channels} '
                         f'input channels, input has {channels}')
    if channels % deform_groups:
        raise ValueError(f'legacy_deform_conv2d: {channels} channels do not '
                         f'split into {deform_groups} deformable groups')
    out_h = (height + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    out_w = (width + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    points = kh * kw
    expected = (n, 2 * deform_groups * points, out_h, out_w)
    if tuple(offset.shape) != expected:
        raise ValueError(f'legacy_deform_conv2d: offset has shape '
                         f'{tuple(offset.shape)}, expected {expected}')
    off = offset.view(n, deform_groups, points, 2, out_h, out_w)
    ki = torch.arange(kh, device=input.device).repeat_interleave(kw)
    kj = torch.arange(kw, device=input.device).repeat(kh)
    rows = torch.arange(out_h, device=input.device) * sh - ph
    cols = torch.arange(out_w, device=input.device) * sw - pw
    base_y = (rows[None, :, None] + (ki * dh)[:, None, None]).to(off.dtype)
    base_x = (cols[None, None, :] + (kj * dw)[:, None, None]).to(off.dtype)
    y = base_y + off[:, :, :, 0]  # (N, G, K, Ho, Wo)
    x = base_x + off[:, :, :, 1]
    inside = (y >= 0) & (x >= 0) & (y < height) & (x < width)
    y0, y1, fy = _axis_samples(y, height)
    x0, x1, fx = _axis_samples(x, width)

    per_group = channels // deform_groups
    planes = input.reshape(n, deform_groups, per_group, height * width)

    def read(yi: Tensor, xi: Tensor) -> Tensor:
        index = (yi * width + xi).view(n, deform_groups, 1, -1)
        return planes.gather(
            3, index.expand(-1, -1, per_group, -1)).view(
                n, deform_groups, per_group, points, out_h, out_w)

    def weight_of(t: Tensor) -> Tensor:
        return t.unsqueeze(2).to(input.dtype)

    gy, gx = weight_of(fy), weight_of(fx)
    cols_ = ((1 - gy) * (1 - gx) * read(y0, x0) + (1 - gy) * gx * read(y0, x1)
             + gy * (1 - gx) * read(y1, x0) + gy * gx * read(y1, x1))
    cols_ = cols_ * weight_of(inside)
    cols_ = cols_.reshape(n, channels * points, out_h * out_w)
    out = torch.matmul(weight.reshape(out_channels, channels * points), cols_)
    return out.view(n, out_channels, out_h, out_w)


@MODELS.register_module('LegacyDCN')
class LegacyDeformConv2dPack(DeformConv2dPack):
    """mmcv's ``DCN`` (:class:`~mmcv.ops.DeformConv2dPack`: the same
    parameters, ``conv_offset`` included, so checkpoints move between the
    two) computed with :func:`legacy_deform_conv2d`: the border rule of
    Deformable ConvNets v1, for its released models. ``groups`` must be 1
    and there is no bias, as in the reference's convolutions."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError('LegacyDCN: groups must be 1, got '
                             f'{self.groups}')

    def forward(self, x: Tensor) -> Tensor:
        offset = self.conv_offset(x)
        return legacy_deform_conv2d(x, offset, self.weight, self.stride,
                                    self.padding, self.dilation,
                                    self.deform_groups)
