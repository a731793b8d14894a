"""ONNX forms of the rfcn_mm operators, in the standard opset only (no
custom domain), for ``torch.onnx.export(custom_translation_table=...)``.

- ``rfcn_mm::sorted_nms``: ONNX ``NonMaxSuppression`` on scores that keep
  the boxes' order (box i of M scores M - i; invalid boxes score 0, under
  the 0.5 score threshold), then each image's kept indices in order, padded
  with -1, rebuilt with ``ScatterND``. ONNX's NMS suppresses at IoU above
  the threshold with areas without +1, as mmcv's and the kernel do.
- ``rfcn_mm::ps_roi_align``: ONNX ``RoiAlign`` (average, the same sample
  grid, border rule and half-pixel shift as the kernels) over all
  ``C * kh * kw`` channels, then a gather of channel ``c * kh * kw + i * kw
  + j`` at bin (i, j). RoIs with a batch index outside the batch or a
  non-finite coordinate give 0, as in the kernels. A zero-size RoI is
  widened by 1e-6 map pixels, so that adaptive sampling takes one sample
  as the kernels do (ONNX Runtime takes none).
- ``aten::sort.stable``, which the fixed-shape stage uses to keep mmdet's
  order of equal scores: ONNX ``TopK`` over the whole axis, sorted, whose
  ties keep the lower index first (as the ONNX spec requires).
- ``rfcn_mm::ps_roi_pool`` needs no translation: it is decomposed into
  standard tensor ops before the export
  (:func:`rfcn_mm.deploy.ps_roi_pool_by_summed_area`).
"""
from onnxscript import BOOL, FLOAT, INT64
from onnxscript import opset18 as op


def sorted_nms_onnx(boxes: FLOAT, valid: BOOL, iou_threshold: float,
                    max_num: int) -> INT64:
    """ONNX form of ``rfcn_mm::sorted_nms`` (same arguments and result)."""
    shape = op.Shape(valid)
    n = op.Gather(shape, op.Constant(value_ints=[0]), axis=0)
    m = op.Gather(shape, op.Constant(value_ints=[1]), axis=0)
    m_float = op.Cast(m, to=FLOAT.dtype)
    order = op.Cast(
        op.Range(
            op.Constant(value_int=0), op.Squeeze(m), op.Constant(value_int=1)),
        to=FLOAT.dtype)
    # M, M - 1, ..., 1: distinct, in the boxes' order
    score = op.Sub(m_float, order)
    scores = op.Where(valid, op.Unsqueeze(score, op.Constant(value_ints=[0])),
                      op.Constant(value_float=0.0))
    selected = op.NonMaxSuppression(
        boxes,
        op.Unsqueeze(scores, op.Constant(value_ints=[1])),
        op.Constant(value_ints=[max_num]),
        op.Constant(value_floats=[iou_threshold]),
        op.Constant(value_floats=[0.5]),
        center_point_box=0)
    image = op.Gather(selected, op.Constant(value_int=0), axis=1)
    box = op.Gather(selected, op.Constant(value_int=2), axis=1)
    # rank of each kept box among the kept boxes of its image
    same = op.Equal(
        op.Unsqueeze(image, op.Constant(value_ints=[0])),
        op.Unsqueeze(image, op.Constant(value_ints=[1])))
    earlier = op.Less(
        op.Unsqueeze(box, op.Constant(value_ints=[0])),
        op.Unsqueeze(box, op.Constant(value_ints=[1])))
    rank = op.ReduceSum(
        op.Cast(op.And(same, earlier), to=INT64.dtype),
        op.Constant(value_ints=[1]),
        keepdims=0)
    out = op.Expand(
        op.Constant(value_int=-1),
        op.Concat(n, op.Constant(value_ints=[max_num]), axis=0))
    where = op.Concat(
        op.Unsqueeze(image, op.Constant(value_ints=[1])),
        op.Unsqueeze(rank, op.Constant(value_ints=[1])),
        axis=1)
    return op.ScatterND(out, where, box)


def sort_stable_onnx(self: FLOAT,
                     stable: bool = True,
                     dim: int = -1,
                     descending: bool = False):
    """ONNX form of ``aten::sort.stable``: (values, indices)."""
    k = op.Gather(op.Shape(self), op.Constant(value_ints=[dim]), axis=0)
    return op.TopK(self, k, axis=dim, largest=int(descending), sorted=1)


def ps_roi_align_onnx(input: FLOAT, rois: FLOAT, pooled_h: int, pooled_w: int,
                      spatial_scale: float, sampling_ratio: int,
                      aligned: bool) -> FLOAT:
    """ONNX form of ``rfcn_mm::ps_roi_align`` (same arguments and
    result)."""
    bins = pooled_h * pooled_w
    shape = op.Shape(input)
    n = op.Gather(shape, op.Constant(value_ints=[0]), axis=0)
    b = op.Gather(rois, op.Constant(value_int=0), axis=1)
    corners = op.Slice(rois, op.Constant(value_ints=[1]),
                       op.Constant(value_ints=[5]),
                       op.Constant(value_ints=[1]))
    finite = op.Not(
        op.Cast(
            op.ReduceMax(
                op.Cast(op.Or(op.IsNaN(rois), op.IsInf(rois)), to=FLOAT.dtype),
                op.Constant(value_ints=[1]),
                keepdims=0),
            to=BOOL.dtype))
    in_batch = op.And(
        op.GreaterOrEqual(b, op.CastLike(op.Constant(value_float=0.0), b)),
        op.Less(b, op.CastLike(n, b)))
    valid = op.And(finite, op.Squeeze(in_batch))
    zero = op.CastLike(op.Constant(value_float=0.0), rois)
    corners = op.Where(
        op.Unsqueeze(valid, op.Constant(value_ints=[1])), corners, zero)
    x1 = op.Slice(corners, op.Constant(value_ints=[0]),
                  op.Constant(value_ints=[1]), op.Constant(value_ints=[1]))
    y1 = op.Slice(corners, op.Constant(value_ints=[1]),
                  op.Constant(value_ints=[2]), op.Constant(value_ints=[1]))
    x2 = op.Slice(corners, op.Constant(value_ints=[2]),
                  op.Constant(value_ints=[3]), op.Constant(value_ints=[1]))
    y2 = op.Slice(corners, op.Constant(value_ints=[3]),
                  op.Constant(value_ints=[4]), op.Constant(value_ints=[1]))
    eps = op.CastLike(op.Constant(value_float=1e-6 / spatial_scale), rois)
    boxes = op.Concat(
        x1,
        y1,
        op.Max(x2, op.Add(x1, eps)),
        op.Max(y2, op.Add(y1, eps)),
        axis=1)
    batch = op.Cast(
        op.Where(valid, b, op.CastLike(op.Constant(value_float=0.0), b)),
        to=INT64.dtype)
    pooled = op.RoiAlign(
        input,
        boxes,
        batch,
        mode='avg',
        output_height=pooled_h,
        output_width=pooled_w,
        sampling_ratio=sampling_ratio,
        spatial_scale=spatial_scale,
        coordinate_transformation_mode='half_pixel'
        if aligned else 'output_half_pixel')
    # (R, C', kh, kw) with C' = C * bins -> (R, C, bins * bins) -> diagonal
    r = op.Gather(op.Shape(rois), op.Constant(value_ints=[0]), axis=0)
    grouped = op.Reshape(
        pooled,
        op.Concat(r, op.Constant(value_ints=[-1, bins * bins]), axis=0))
    diagonal = op.Constant(value_ints=[q * bins + q for q in range(bins)])
    out = op.Gather(grouped, diagonal, axis=2)
    out = op.Reshape(
        out,
        op.Concat(r, op.Constant(value_ints=[-1, pooled_h, pooled_w]), axis=0))
    return op.Where(
        op.Reshape(valid, op.Constant(value_ints=[-1, 1, 1, 1])), out,
        op.CastLike(op.Constant(value_float=0.0), out))
