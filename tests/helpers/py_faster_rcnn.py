"""NumPy transcriptions of py-faster-rcnn's box code (``generate_anchors``,
``bbox_transform_inv``, ``clip_boxes``, ``py_cpu_nms``, the test-time
``ProposalLayer`` and the per-class NMS of its test code), written from its
semantics as oracles for the classes that reproduce them (py-R-FCN uses the
same; Deformable-ConvNets too, but for its ``nonlinear_pred``)."""
import numpy as np


def generate_anchors(base_size=16, ratios=(0.5, 1, 2), scales=(8, 16, 32)):
    """Ratio-major (A, 4) anchors, corners inclusive."""
    def whctr(a):
        w, h = a[2] - a[0] + 1, a[3] - a[1] + 1
        return w, h, a[0] + 0.5 * (w - 1), a[1] + 0.5 * (h - 1)

    def mk(ws, hs, x, y):
        ws, hs = ws[:, None], hs[:, None]
        return np.hstack([x - 0.5 * (ws - 1), y - 0.5 * (hs - 1),
                          x + 0.5 * (ws - 1), y + 0.5 * (hs - 1)])

    base = np.array([0, 0, base_size - 1, base_size - 1], dtype=np.float64)
    w, h, x, y = whctr(base)
    ws = np.round(np.sqrt(w * h / np.array(ratios)))
    hs = np.round(ws * np.array(ratios))
    out = []
    for a in mk(ws, hs, x, y):
        w, h, x, y = whctr(a)
        out.append(mk(w * np.array(scales), h * np.array(scales), x, y))
    return np.vstack(out)


def bbox_transform_inv(boxes, deltas):
    """Boxes moved by (N, 4 * n) deltas: centre x1 + w/2, w = x2 - x1 + 1."""
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    cx, cy = boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h
    dx, dy = deltas[:, 0::4], deltas[:, 1::4]
    dw, dh = deltas[:, 2::4], deltas[:, 3::4]
    px, py = dx * w[:, None] + cx[:, None], dy * h[:, None] + cy[:, None]
    pw, ph = np.exp(dw) * w[:, None], np.exp(dh) * h[:, None]
    out = np.zeros_like(deltas)
    out[:, 0::4], out[:, 1::4] = px - 0.5 * pw, py - 0.5 * ph
    out[:, 2::4], out[:, 3::4] = px + 0.5 * pw, py + 0.5 * ph
    return out


def nonlinear_pred(boxes, deltas):
    """Deformable-ConvNets' decoding: centre x1 + (w - 1) / 2, a box w'
    wide spans ctr -/+ (w' - 1) / 2."""
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    cx, cy = boxes[:, 0] + 0.5 * (w - 1.0), boxes[:, 1] + 0.5 * (h - 1.0)
    dx, dy = deltas[:, 0::4], deltas[:, 1::4]
    dw, dh = deltas[:, 2::4], deltas[:, 3::4]
    px, py = dx * w[:, None] + cx[:, None], dy * h[:, None] + cy[:, None]
    pw, ph = np.exp(dw) * w[:, None], np.exp(dh) * h[:, None]
    out = np.zeros_like(deltas)
    out[:, 0::4], out[:, 1::4] = px - 0.5 * (pw - 1), py - 0.5 * (ph - 1)
    out[:, 2::4], out[:, 3::4] = px + 0.5 * (pw - 1), py + 0.5 * (ph - 1)
    return out


def clip_boxes(boxes, im_shape):
    """Clip to [0, W - 1] x [0, H - 1]; im_shape is (H, W)."""
    boxes = boxes.copy()
    boxes[:, 0::4] = np.clip(boxes[:, 0::4], 0, im_shape[1] - 1)
    boxes[:, 1::4] = np.clip(boxes[:, 1::4], 0, im_shape[0] - 1)
    boxes[:, 2::4] = np.clip(boxes[:, 2::4], 0, im_shape[1] - 1)
    boxes[:, 3::4] = np.clip(boxes[:, 3::4], 0, im_shape[0] - 1)
    return boxes


def py_cpu_nms(dets, thresh):
    """Greedy NMS over (N, 5) boxes + scores with +1 areas."""
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind='stable')
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0,
                                                            yy2 - yy1 + 1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= thresh]
    return np.array(keep, dtype=np.int64)


def proposal_layer(fg_prob, deltas, im_info, stride=16, anchors=None,
                   pre_nms=6000, post_nms=300, nms_thresh=0.7, min_size=16):
    """The test-time ProposalLayer of one image. fg_prob: (A, H, W)
    foreground probabilities; deltas: (4A, H, W); im_info: (height,
    width, scale). Returns (boxes (P, 4), scores (P,))."""
    anchors = generate_anchors() if anchors is None else anchors
    a, height, width = fg_prob.shape
    sx, sy = np.meshgrid(np.arange(width) * stride,
                         np.arange(height) * stride)
    shifts = np.vstack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()]).T
    all_anchors = (anchors[None] + shifts[:, None]).reshape(-1, 4)
    scores = fg_prob.transpose(1, 2, 0).reshape(-1)
    deltas = deltas.transpose(1, 2, 0).reshape(-1, 4)
    boxes = clip_boxes(bbox_transform_inv(all_anchors, deltas), im_info[:2])
    ws = boxes[:, 2] - boxes[:, 0] + 1
    hs = boxes[:, 3] - boxes[:, 1] + 1
    keep = (ws >= min_size * im_info[2]) & (hs >= min_size * im_info[2])
    boxes, scores = boxes[keep], scores[keep]
    order = np.argsort(-scores, kind='stable')[:pre_nms]
    boxes, scores = boxes[order], scores[order]
    keep = py_cpu_nms(np.hstack([boxes, scores[:, None]]),
                      nms_thresh)[:post_nms]
    return boxes[keep], scores[keep]


def detections(rois, cls_prob, bbox_pred, shape, decode=bbox_transform_inv,
               score_thr=1e-3, nms_thr=0.3, max_per_image=100):
    """The test code on a network's outputs (class-agnostic boxes): the
    foreground deltas decoded from the RoIs and clipped; per class (the
    background at 0 skipped), scores above the threshold and NMS with +1
    areas; the best ``max_per_image`` of the image. Returns (D, 6) rows
    (x1, y1, x2, y2, score, label - 1), best first."""
    boxes = clip_boxes(decode(rois[:, 1:5], bbox_pred[:, 4:8]), shape)
    dets = []
    for j in range(1, cls_prob.shape[1]):
        inds = np.where(cls_prob[:, j] > score_thr)[0]
        cls_dets = np.hstack([boxes[inds], cls_prob[inds, j:j + 1]])
        keep = py_cpu_nms(cls_dets.astype(np.float32), nms_thr)
        dets += [(*d, j - 1) for d in cls_dets[keep]]
    dets = np.array(dets).reshape(-1, 6)
    if len(dets) > max_per_image:
        thr = np.sort(dets[:, 4])[-max_per_image]
        dets = dets[dets[:, 4] >= thr]
    return dets[np.argsort(-dets[:, 4], kind='stable')]
