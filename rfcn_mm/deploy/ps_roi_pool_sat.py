"""PS RoI pooling in standard tensor ops, for deployment formats without
the rfcn_mm kernels (ONNX).

Each bin of :func:`rfcn_mm.ops.ps_roi_pool` averages an integer rectangle
of one score map (Eq. 1 of the paper), so it is four lookups in the map's
summed-area table divided by the rectangle's area: two cumulative sums, a
gather and a few elementwise ops, all in ONNX's standard opset. The
rectangles are computed as the kernels compute them (same dtype, same
order of operations, clamped to the map); the table is summed in float64,
so the result equals the kernel's up to float summation order.
"""
import torch
from torch import Tensor


def _bin_edges(start: Tensor, bin_size: Tensor, bins: int, size: int) -> tuple:
    """(R, bins) first and one-past-last pixel of each bin along one axis,
    clamped to [0, size] (``ps_pool_bin_range`` of the kernels)."""
    idx = torch.arange(bins, device=start.device, dtype=start.dtype)
    lo = torch.floor(start[:, None] + idx * bin_size[:, None])
    hi = torch.ceil(start[:, None] + (idx + 1) * bin_size[:, None])
    # clamp in floating point, then cast (NaN would give 0 in the kernels;
    # such RoIs are masked out by the caller)
    lo = lo.clamp(0, size).nan_to_num(0).long()
    hi = hi.clamp(0, size).nan_to_num(0).long()
    return lo, hi


def ps_roi_pool_by_summed_area(input: Tensor,
                               rois: Tensor,
                               pooled_h: int,
                               pooled_w: int,
                               spatial_scale: float,
                               legacy: bool = False) -> Tensor:
    """:func:`rfcn_mm.ops.ps_roi_pool` (same arguments, the op's defaults
    for the rest) written with summed-area-table lookups.

    Args:
        input (Tensor): (N, C * kh * kw, H, W) score maps.
        rois (Tensor): (R, 5) RoIs (batch_index, x1, y1, x2, y2), the
            dtype of ``input``.
        pooled_h, pooled_w (int): The bin grid.
        spatial_scale (float): Image to map scale.
        legacy (bool): The reference's RoI coordinates (rounded corners,
            inclusive end, at least 0.1 map pixels).

    Returns:
        Tensor: (R, C, kh, kw), 0 for RoIs with a batch index outside the
        batch or a non-finite coordinate, and for empty bins.
    """
    n, channels, height, width = input.shape
    bins = pooled_h * pooled_w
    cout = channels // bins
    r = rois.to(input.dtype)
    # a Python scalar multiplies in the tensor's dtype, as the kernels do
    scale = float(spatial_scale)
    finite = torch.isfinite(r).all(1)
    r = torch.where(finite[:, None], r, torch.zeros_like(r))
    b = r[:, 0]
    valid = finite & (b >= 0) & (b < n)
    b = b.clamp(0, n - 1).long()
    if legacy:
        # C's round (half away from zero); torch.round is half to even
        c = torch.sign(r[:, 1:]) * torch.floor(r[:, 1:].abs() + 0.5)
        start_w, start_h = c[:, 0] * scale, c[:, 1] * scale
        roi_w = ((c[:, 2] + 1) * scale - start_w).clamp(min=0.1)
        roi_h = ((c[:, 3] + 1) * scale - start_h).clamp(min=0.1)
    else:
        start_w, start_h = r[:, 1] * scale, r[:, 2] * scale
        roi_w = (r[:, 3] * scale - start_w).clamp(min=0)
        roi_h = (r[:, 4] * scale - start_h).clamp(min=0)
    hs, he = _bin_edges(start_h, roi_h / pooled_h, pooled_h, height)
    ws, we = _bin_edges(start_w, roi_w / pooled_w, pooled_w, width)
    # summed-area table with a zero first row and column: (N, C', H+1, W+1)
    table = torch.nn.functional.pad(input.double().cumsum(2).cumsum(3),
                                    (1, 0, 1, 0))
    flat = table.reshape(-1)
    # index of table[b, c * bins + i * kw + j, h, w] for every (R, C, i, j)
    ch = (
        torch.arange(cout, device=input.device)[:, None, None] * bins +
        torch.arange(pooled_h, device=input.device)[None, :, None] * pooled_w +
        torch.arange(pooled_w, device=input.device)[None, None])
    plane = (b[:, None, None, None] * channels + ch[None]) * ((height + 1) *
                                                              (width + 1))

    def at(h: Tensor, w: Tensor) -> Tensor:
        # h: (R, kh), w: (R, kw) -> (R, C, kh, kw)
        idx = plane + h[:, None, :, None] * (width + 1) + w[:, None, None, :]
        return flat[idx]

    total = at(he, we) - at(hs, we) - at(he, ws) + at(hs, ws)
    area = ((he - hs)[:, :, None] * (we - ws)[:, None, :])[:, None]
    keep = (area > 0) & valid[:, None, None, None]
    out = torch.where(keep, total / area.clamp(min=1), 0.)
    return out.to(input.dtype)
