"""Slow pure-PyTorch references of the position-sensitive RoI ops.

They mirror the kernels' index math step by step (same dtype for the
coordinates, same order of operations) and are differentiable through
autograd, so they serve as the test oracle for values and gradients. They
also document the semantics in the plainest form.
"""
import math
from typing import Tuple, Union

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


def ps_roi_pool_reference(input: Tensor, rois: Tensor,
                          output_size: Union[int, Tuple[int, int]],
                          spatial_scale: float = 1.0) -> Tensor:
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
                           aligned: bool = True) -> Tensor:
    """Reference of :func:`rfcn_mm.ops.ps_roi_align` (same arguments)."""
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
