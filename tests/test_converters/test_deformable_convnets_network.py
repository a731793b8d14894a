"""A converted Deformable-ConvNets network against MXNet's own forward.

MXNet 1.9.1 builds the reference's R-FCN and Deformable R-FCN test networks
(their structure, layer names and operators, at 1/8 of the widths, with
the real block counts; :mod:`helpers.mxnet_rfcn_net`) with random weights,
saves them as Deformable-ConvNets does and runs them on a random image.
The saved file is read and converted by rfcn_mm and loaded, strictly, into
the legacy config's model at the same widths; then, on the same image
(rfcn_mm's preprocessing against the reference's): the RPN's scores and
deltas, the proposals of ``contrib.Proposal``, the class probabilities and
deltas for a fixed RoI list, the conv5 features (deformable convolutions
with DCN), and the final detections (the reference test code's decoding,
per-class NMS and top-100 cut, in NumPy on MXNet's outputs) agree."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from helpers.mxnet_oracle import run_mxnet
from helpers.mxnet_rfcn_net import SCRIPT
from helpers.narrow_rfcn import narrow_model
from helpers.py_faster_rcnn import detections, nonlinear_pred
from mmdet.structures import DetDataSample

from rfcn_mm.converters import read_params
from rfcn_mm.converters.deformable_convnets import convert_params

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs', 'rfcn')
WIDTH = 8  # 64 in the real network
CLASSES = 4  # background + 3
HEIGHT, WIDTH_PX = 320, 416  # pool1's ceil mode matters for both
# the reference's transform: RGB minus its means (BGR order below), no std
PIXEL_MEANS_BGR = np.array([103.06, 115.90, 123.15], np.float32)


def _case(dcn):
    return dict(
        width=WIDTH, k=7, classes=CLASSES, anchors=12, dcn=dcn, seed=3,
        scales=[4, 8, 16, 32], ratios=[0.5, 1, 2], pre_nms=6000,
        post_nms=300, rpn_channels=2 * WIDTH, mid_channels=4 * WIDTH,
        # weight scales that keep 100 random layers' outputs informative
        gains=dict(default=1.0, conv1=0.01, rfcn_cls=8.0,
                   rpn_bbox_pred=0.1, rfcn_bbox=0.1,
                   rfcn_cls_offset_t=0.5, rfcn_bbox_offset_t=0.5,
                   res5a_branch2b_offset=0.2, res5b_branch2b_offset=0.2,
                   res5c_branch2b_offset=0.2))


def _model(dcn):
    """The legacy config's model at the test's widths."""
    name = 'rfcn_r101_dcn_mxnet_coco.py' if dcn else 'rfcn_r101_mxnet_coco.py'
    return narrow_model(osp.join(CONFIGS, name), WIDTH, CLASSES - 1,
                        2 * WIDTH, 4 * WIDTH)


@pytest.mark.parametrize(
    'device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
@pytest.mark.parametrize('dcn', [False, True], ids=['rfcn', 'rfcn_dcn'])
def test_converted_network_matches_mxnet(tmp_path, dcn, device):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (HEIGHT, WIDTH_PX, 3), dtype=np.uint8)
    data = (image[:, :, ::-1] - PIXEL_MEANS_BGR[::-1]).astype(np.float32)
    data = data.transpose(2, 0, 1)[None].copy()
    fixed = np.array([[0, 10, 20, 200, 300], [0, 0, 0, 415, 319],
                      [0, 100.4, 50.6, 180.5, 99.5], [0, 300, 200, 330, 215],
                      [0, 5, 5, 12, 9], [0, -20, 250, 60, 340]], np.float32)
    np.save(tmp_path / 'data.npy', data)
    np.save(tmp_path / 'rois.npy', fixed)
    (tmp_path / 'case.json').write_text(json.dumps(_case(dcn)))
    run_mxnet(SCRIPT, cwd=str(tmp_path), timeout=600)
    ref = {
        name: np.load(tmp_path / f'{name}.npy')
        for name in ('conv5', 'rpn_cls_prob', 'rpn_bbox_pred', 'rois',
                     'roi_scores', 'cls_prob', 'bbox_pred', 'fixed_cls_prob',
                     'fixed_bbox_pred')
    }

    weights, _ = convert_params(read_params(str(tmp_path / 'net.params')))
    model = _model(dcn)
    model.load_state_dict({k: torch.from_numpy(v)
                           for k, v in weights.items()}, strict=True)
    model.to(device)
    sample = DetDataSample(metainfo=dict(
        img_shape=(HEIGHT, WIDTH_PX), ori_shape=(HEIGHT, WIDTH_PX),
        scale_factor=(1.0, 1.0), pad_shape=(HEIGHT, WIDTH_PX)))
    batch = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(image.transpose(2, 0, 1).copy())],
             data_samples=[sample]), False)
    inputs, samples = batch['inputs'], batch['data_samples']
    # the preprocessing is the reference's transform
    torch.testing.assert_close(inputs.cpu().numpy(), data)
    tol = dict(rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        cls_scores, bbox_preds = model.rpn_head(feats)
        anchors = cls_scores[0].shape[1]
        torch.testing.assert_close(cls_scores[0].sigmoid().cpu().numpy(),
                                   ref['rpn_cls_prob'][:, anchors:], **tol)
        torch.testing.assert_close(bbox_preds[0].cpu().numpy(),
                                   ref['rpn_bbox_pred'], **tol)

        # conv5 (the deformable convs with DCN)
        torch.testing.assert_close(
            model.roi_head.shared_head(feats[0]).cpu().numpy(),
            ref['conv5'], **tol)
        proposals = model.rpn_head.predict(feats, samples, rescale=False)[0]
        # contrib.Proposal pads to 300 by repeating kept boxes when fewer
        # survive; there are more here, so both keep the best 300
        assert len(proposals) == len(ref['rois']) == 300
        torch.testing.assert_close(proposals.bboxes.cpu().numpy(),
                                   ref['rois'][:, 1:], **tol)
        torch.testing.assert_close(proposals.scores.cpu().numpy(),
                                   ref['roi_scores'][:, 0], **tol)

        out = model.roi_head._bbox_forward(
            feats, torch.from_numpy(fixed).to(device))
        prob = out['cls_score'].softmax(-1).cpu().numpy()
        # rfcn_mm: background last; the reference: background first
        torch.testing.assert_close(
            np.concatenate([prob[:, -1:], prob[:, :-1]], 1),
            ref['fixed_cls_prob'], **tol)
        torch.testing.assert_close(out['bbox_pred'].cpu().numpy(),
                                   ref['fixed_bbox_pred'][:, 4:], **tol)
        # informative outputs, not saturated ones
        assert ref['fixed_cls_prob'].std() > 0.01
        assert ref['cls_prob'].max() < 0.999

        result = model.predict(inputs, samples, rescale=True)[0]
    # Deformable-ConvNets' test code: its decoding, threshold 1e-3, NMS
    # 0.3, 100 per image
    want = detections(ref['rois'], ref['cls_prob'], ref['bbox_pred'],
                      (HEIGHT, WIDTH_PX), decode=nonlinear_pred)
    got = result.pred_instances
    assert len(got) == len(want) and len(want) > 10
    order = torch.argsort(got.scores, descending=True, stable=True)
    torch.testing.assert_close(got.scores[order].cpu().numpy(),
                               want[:, 4].astype(np.float32), **tol)
    torch.testing.assert_close(got.bboxes[order].cpu().numpy(),
                               want[:, :4].astype(np.float32), rtol=1e-4,
                               atol=2e-3)
    np.testing.assert_array_equal(got.labels[order].cpu().numpy(),
                                  want[:, 5].astype(np.int64))
