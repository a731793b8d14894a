"""A converted py-R-FCN network against a NumPy forward of the Caffe one.

No Caffe runtime exists on today's stack, so :mod:`helpers.caffe_rfcn_net`
runs ``test_agnostic.prototxt``'s network in NumPy as Caffe computes it,
at 1/8 of the widths with the real block counts and random weights. The
same weights are written as a ``.caffemodel`` in Caffe's wire format with
the real layer names (BatchNorm statistics multiplied by a scale factor of
2, as Caffe stores them), converted by rfcn_mm and loaded, strictly, into
the legacy VOC config's model at the same widths; on a random image (BGR,
Caffe's means) the RPN, the proposal layer's boxes, conv5, the head's
class probabilities and deltas for a fixed RoI list and the final
detections of py-R-FCN's test code (py-faster-rcnn's decoding, per-class
NMS 0.3, 400 per image) agree."""
import os.path as osp

import numpy as np
import torch
from helpers.caffe_rfcn_net import forward, make_layers
from helpers.caffe_wire import layer
from helpers.narrow_rfcn import narrow_model
from helpers.py_faster_rcnn import detections
from mmdet.structures import DetDataSample

from rfcn_mm.converters import read_caffemodel
from rfcn_mm.converters.py_rfcn import convert_layers

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_pyrfcn_voc0712.py')
WIDTH, CLASSES, ANCHORS, K = 8, 4, 9, 7  # CLASSES with the background
HEIGHT, WIDTH_PX = 320, 416
PIXEL_MEANS_BGR = np.array([102.9801, 115.9465, 122.7717])
GAINS = {'conv1': 0.01, 'rfcn_cls': 8.0, 'rpn_bbox_pred': 0.1,
         'rfcn_bbox': 0.1}


def test_converted_network_matches_caffe_semantics(tmp_path):
    layers = make_layers(WIDTH, CLASSES, ANCHORS, 2 * WIDTH, 4 * WIDTH, K,
                         seed=5, gains=GAINS)
    path = tmp_path / 'narrow_rfcn.caffemodel'
    path.write_bytes(b''.join(
        layer(name, kind, blobs) for name, (kind, blobs) in layers.items()))
    weights, report = convert_layers(read_caffemodel(str(path)))
    assert report[0].startswith('110 convolutions, 104 BatchNorms')
    model = narrow_model(CONFIG, WIDTH, CLASSES - 1, 2 * WIDTH, 4 * WIDTH)
    model.load_state_dict({k: torch.from_numpy(v)
                           for k, v in weights.items()}, strict=True)

    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (HEIGHT, WIDTH_PX, 3), dtype=np.uint8)
    data = (image - PIXEL_MEANS_BGR).transpose(2, 0, 1)
    fixed = np.array([[0, 10, 20, 200, 300], [0, 0, 0, 415, 319],
                      [0, 100.4, 50.6, 180.5, 99.5], [0, 300, 200, 330, 215],
                      [0, 5, 5, 12, 9], [0, -20, 250, 60, 340]])
    ref = forward(layers, data, fixed, K, ANCHORS)

    sample = DetDataSample(metainfo=dict(
        img_shape=(HEIGHT, WIDTH_PX), ori_shape=(HEIGHT, WIDTH_PX),
        scale_factor=(1.0, 1.0), pad_shape=(HEIGHT, WIDTH_PX)))
    batch = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(image.transpose(2, 0, 1).copy())],
             data_samples=[sample]), False)
    inputs, samples = batch['inputs'], batch['data_samples']
    torch.testing.assert_close(inputs[0].double().numpy(), data,
                               rtol=0, atol=1e-4)
    tol = dict(rtol=1e-4, atol=1e-4)

    def close(a, b, **kw):
        torch.testing.assert_close(a, np.asarray(b, np.float32),
                                   **(kw or tol))

    with torch.no_grad():
        feats = model.extract_feat(inputs)
        close(model.roi_head.shared_head(feats[0])[0].numpy(), ref['conv5'])
        cls_scores, bbox_preds = model.rpn_head(feats)
        close(cls_scores[0][0].sigmoid().numpy(),
              ref['rpn_cls_prob'][ANCHORS:])
        close(bbox_preds[0][0].numpy(), ref['rpn_bbox_pred'])
        proposals = model.rpn_head.predict(feats, samples, rescale=False)[0]
        assert len(proposals) == len(ref['rois']) == 300
        close(proposals.bboxes.numpy(), ref['rois'][:, 1:], atol=1e-3,
              rtol=1e-4)
        close(proposals.scores.numpy(), ref['roi_scores'])

        out = model.roi_head._bbox_forward(
            feats, torch.from_numpy(fixed).float())
        prob = out['cls_score'].softmax(-1).numpy()
        # rfcn_mm: background last; the reference: background first
        close(np.concatenate([prob[:, -1:], prob[:, :-1]], 1),
              ref['fixed_cls_prob'])
        close(out['bbox_pred'].numpy(), ref['fixed_bbox_pred'][:, 4:])
        assert ref['fixed_cls_prob'].std() > 0.01
        result = model.predict(inputs, samples, rescale=True)[0]

    # py-R-FCN's test code: no threshold, NMS 0.3, 400 per image
    want = detections(ref['rois'], ref['cls_prob'], ref['bbox_pred'],
                      (HEIGHT, WIDTH_PX), score_thr=0.0, max_per_image=400)
    got = result.pred_instances
    assert len(got) == len(want) and len(want) > 10
    order = torch.argsort(got.scores, descending=True, stable=True)
    close(got.scores[order].numpy(), want[:, 4])
    close(got.bboxes[order].numpy(), want[:, :4], rtol=1e-4, atol=2e-3)
    np.testing.assert_array_equal(got.labels[order].numpy(),
                                  want[:, 5].astype(np.int64))
