"""Slow pure-PyTorch references of the position-sensitive RoI ops.

They mirror the kernels' index math step by step (same dtype for the
coordinates, same order of operations) and are differentiable through
autograd, so they serve as the test oracle for values and gradients. They
also document the semantics in the plainest form.
"""
import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn.modules.utils import _pair


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16,
                                      torch.bfloat16) else dtype


def _bin_range(start: Tensor, bin_size: Tensor, idx: int,
               size: int) -> Tuple[int, int]:
    i = torch.tensor(idx, dtype=start.dtype)
    s = int(torch.floor(start + i * bin_size))
    e = int(torch.ceil(start + (i + 1) * bin_size))
    return min(max(s, 0), size), min(max(e, 0), size)


def ps_roi_pool_reference(input: Tensor,
                          rois: Tensor,
                          output_size: Union[int, Tuple[int, int]],
                          spatial_scale: float = 1.0,
                          legacy: bool = False) -> Tensor:
    """Reference of :func:`rfcn_mm.ops.ps_roi_pool` (same arguments)."""
    ph, pw = _pair(output_size)
    n, channels, height, width = input.shape
    cout = channels // (ph * pw)
    acc = _acc_dtype(input.dtype)
    x = input.to(acc)
    r = rois.detach().to(acc)
    scale = torch.tensor(spatial_scale, dtype=acc)
    out = []
    for roi in r:
        b = int(roi[0])
        if not 0 <= b < n:
            out.append(x.new_zeros(cout, ph, pw))
            continue
        if legacy:  # rounded corners, inclusive end, at least 0.1
            x1 = _round_half_away(roi[1]) * scale
            y1 = _round_half_away(roi[2]) * scale
            roi_w = torch.clamp(
                (_round_half_away(roi[3]) + 1) * scale - x1, min=0.1)
            roi_h = torch.clamp(
                (_round_half_away(roi[4]) + 1) * scale - y1, min=0.1)
        else:
            x1, y1 = roi[1] * scale, roi[2] * scale
            roi_w = torch.clamp(roi[3] * scale - x1, min=0)
            roi_h = torch.clamp(roi[4] * scale - y1, min=0)
        bin_w, bin_h = roi_w / pw, roi_h / ph
        bins = []
        for i in range(ph):
            hs, he = _bin_range(y1, bin_h, i, height)
            for j in range(pw):
                ws, we = _bin_range(x1, bin_w, j, width)
                chans = torch.arange(cout) * ph * pw + i * pw + j
                if he <= hs or we <= ws:
                    bins.append(x.new_zeros(cout))
                else:
                    area = (he - hs) * (we - ws)
                    bins.append(x[b, chans, hs:he, ws:we].sum((1, 2)) / area)
        out.append(torch.stack(bins, 1).view(cout, ph, pw))
    if not out:
        return x.new_zeros(0, cout, ph, pw).to(input.dtype)
    return torch.stack(out).to(input.dtype)


def _bilinear(plane: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """mmcv's bilinear sample of (C, H, W) at one point, as a (C,) tensor."""
    height, width = plane.shape[-2:]
    if y < -1 or y > height or x < -1 or x > width:
        return plane.new_zeros(plane.shape[0])
    y = torch.clamp(y, min=0)
    x = torch.clamp(x, min=0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = y.new_tensor(float(y_low))
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = x.new_tensor(float(x_low))
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx * plane[:, y_low, x_low] +
            hy * lx * plane[:, y_low, x_high] +
            ly * hx * plane[:, y_high, x_low] +
            ly * lx * plane[:, y_high, x_high])


def ps_roi_align_reference(input: Tensor,
                           rois: Tensor,
                           output_size: Union[int, Tuple[int, int]],
                           spatial_scale: float = 1.0,
                           sampling_ratio: int = 2,
                           aligned: bool = True,
                           legacy: bool = False) -> Tensor:
    """Reference of :func:`rfcn_mm.ops.ps_roi_align` (same arguments)."""
    if legacy:
        return deform_ps_roi_pool_reference(
            input, rois, None, output_size, spatial_scale,
            sample_per_part=sampling_ratio, legacy=True)
    ph, pw = _pair(output_size)
    n, channels, height, width = input.shape
    cout = channels // (ph * pw)
    acc = _acc_dtype(input.dtype)
    x = input.to(acc)
    r = rois.detach().to(acc)
    scale = torch.tensor(spatial_scale, dtype=acc)
    offset = torch.tensor(0.5 if aligned else 0.0, dtype=acc)
    out = []
    for roi in r:
        b = int(roi[0])
        if not 0 <= b < n:
            out.append(x.new_zeros(cout, ph, pw))
            continue
        start_w = roi[1] * scale - offset
        start_h = roi[2] * scale - offset
        roi_w = roi[3] * scale - offset - start_w
        roi_h = roi[4] * scale - offset - start_h
        if not aligned:
            roi_w, roi_h = torch.clamp(roi_w, min=1), torch.clamp(roi_h, min=1)
        roi_w, roi_h = torch.clamp(roi_w, min=0), torch.clamp(roi_h, min=0)
        bin_h, bin_w = roi_h / ph, roi_w / pw
        grid_h = sampling_ratio or math.ceil(float(roi_h / ph))
        grid_w = sampling_ratio or math.ceil(float(roi_w / pw))
        grid_h, grid_w = max(grid_h, 1), max(grid_w, 1)
        bins = []
        for i in range(ph):
            for j in range(pw):
                chans = torch.arange(cout) * ph * pw + i * pw + j
                plane = x[b, chans]
                total = x.new_zeros(cout)
                for iy in range(grid_h):
                    y = start_h + i * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        xx = start_w + j * bin_w + (ix + 0.5) * bin_w / grid_w
                        total = total + _bilinear(plane, y, xx)
                bins.append(total / (grid_h * grid_w))
        out.append(torch.stack(bins, 1).view(cout, ph, pw))
    if not out:
        return x.new_zeros(0, cout, ph, pw).to(input.dtype)
    return torch.stack(out).to(input.dtype)


def _round_half_away(v: Tensor) -> Tensor:
    """C's ``round`` (half away from zero), as the reference kernel uses;
    ``torch.round`` rounds half to even."""
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def _legacy_bilinear(plane: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Deformable-ConvNets' bilinear read of (C, H, W) at a point already
    clamped into the map, with ``x_high = x_low + 1`` (clamped to the
    map) instead of ``ceil(x)``: the same values, and a gradient at
    integer positions that is the right-hand derivative instead of 0."""
    height, width = plane.shape[-2:]
    y_low, x_low = int(torch.floor(y)), int(torch.floor(x))
    y_high, x_high = min(y_low + 1, height - 1), min(x_low + 1, width - 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx * plane[:, y_low, x_low] +
            hy * lx * plane[:, y_low, x_high] +
            ly * hx * plane[:, y_high, x_low] +
            ly * lx * plane[:, y_high, x_high])


def deform_ps_roi_pool_reference(input: Tensor,
                                 rois: Tensor,
                                 offset: Optional[Tensor],
                                 output_size: Union[int, Tuple[int, int]],
                                 spatial_scale: float = 1.0,
                                 part_size: Optional[Union[int, Tuple[int,
                                                                      int]]]
                                 = None,
                                 sample_per_part: int = 4,
                                 trans_std: float = 0.1,
                                 legacy: bool = False) -> Tensor:
    """Reference of :func:`rfcn_mm.ops.deform_ps_roi_pool` (same
    arguments), differentiable with respect to ``input`` and ``offset``."""
    ph, pw = _pair(output_size)
    part_h, part_w = _pair(part_size) if part_size is not None else (ph, pw)
    n, channels, height, width = input.shape
    cout = channels // (ph * pw)
    acc = _acc_dtype(input.dtype)
    x = input.to(acc)
    r = rois.detach().to(acc)
    off = None if offset is None else offset.to(acc)
    groups = 1 if off is None else off.size(1) // 2
    scale = torch.tensor(spatial_scale, dtype=acc)
    s = sample_per_part
    out = []
    for ri, roi in enumerate(r):
        b = int(roi[0]) if torch.isfinite(roi).all() else -1
        if not 0 <= b < n:
            out.append(x.new_zeros(cout, ph, pw))
            continue
        if legacy:
            start_w = _round_half_away(roi[1]) * scale - 0.5
            start_h = _round_half_away(roi[2]) * scale - 0.5
            roi_w = torch.clamp(
                (_round_half_away(roi[3]) + 1) * scale - 0.5 - start_w,
                min=0.1)
            roi_h = torch.clamp(
                (_round_half_away(roi[4]) + 1) * scale - 0.5 - start_h,
                min=0.1)
        else:
            start_w = roi[1] * scale - 0.5
            start_h = roi[2] * scale - 0.5
            roi_w = torch.clamp(roi[3] * scale - 0.5 - start_w, min=0)
            roi_h = torch.clamp(roi[4] * scale - 0.5 - start_h, min=0)
        bin_w, bin_h = roi_w / pw, roi_h / ph
        sub_w, sub_h = bin_w / s, bin_h / s
        cells = []
        for c in range(cout):
            g = c * groups // cout
            bins = []
            for i in range(ph):
                for j in range(pw):
                    pi, pj = i * part_h // ph, j * part_w // pw
                    if off is None:
                        tx = ty = x.new_zeros(())
                    else:
                        tx = off[ri, 2 * g, pi, pj] * trans_std
                        ty = off[ri, 2 * g + 1, pi, pj] * trans_std
                    wstart = start_w + j * bin_w + tx * roi_w
                    hstart = start_h + i * bin_h + ty * roi_h
                    if not bool(torch.isfinite(wstart + hstart)):
                        # a NaN/inf offset: the bin is NaN, no gradient
                        bins.append(x.new_full((), float('nan')))
                        continue
                    plane = x[b, (c * ph + i) * pw + j][None]
                    total, count = x.new_zeros(()), 0
                    for iy in range(s):
                        for ix in range(s):
                            if legacy:
                                yy = hstart + iy * sub_h
                                xx = wstart + ix * sub_w
                                if not (-0.5 <= float(yy) <= height - 0.5
                                        and -0.5 <= float(xx) <= width - 0.5):
                                    continue
                                yy = torch.clamp(yy, 0, height - 1)
                                xx = torch.clamp(xx, 0, width - 1)
                                total = total + _legacy_bilinear(
                                    plane, yy, xx)[0]
                            else:
                                yy = hstart + (iy + 0.5) * sub_h
                                xx = wstart + (ix + 0.5) * sub_w
                                total = total + _bilinear(plane, yy, xx)[0]
                            count += 1
                    if legacy:
                        bins.append(total / count if count else total * 0)
                    else:
                        bins.append(total / (s * s))
            cells.append(torch.stack(bins).view(ph, pw))
        out.append(torch.stack(cells))
    if not out:
        return x.new_zeros(0, cout, ph, pw).to(input.dtype)
    return torch.stack(out).to(input.dtype)
