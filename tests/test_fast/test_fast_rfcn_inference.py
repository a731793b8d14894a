"""FastRFCN's inference: the split path and optimize_for_inference (fused
BatchNorm, channels_last, reduced precision, fixed-shape post-processing,
CUDA graphs), against RFCN's (mmdet's) predict."""
import copy

import pytest
import torch
from helpers.tiny_rfcn import build_tiny, make_batch
from mmdet.models.detectors import TwoStageDetector
from torch.nn.modules.batchnorm import _BatchNorm

from rfcn_mm.utils import OpCensus


def randomize_bn(model, seed=1):
    """Non-trivial running statistics and affine parameters, so that
    folding BatchNorm into the convs changes the weights."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def predictions(model, inputs, samples):
    with torch.no_grad():
        out = model.predict(inputs, copy.deepcopy(samples))
    return [s.pred_instances for s in out]


def assert_same_detections(got, want, atol, box_atol=None):
    for g, w in zip(got, want):
        assert len(g) == len(w) > 0
        torch.testing.assert_close(g.labels, w.labels)
        torch.testing.assert_close(g.scores, w.scores, atol=atol, rtol=0)
        torch.testing.assert_close(
            g.bboxes,
            w.bboxes,
            atol=atol * 100 if box_atol is None else box_atol,
            rtol=0)


@pytest.fixture(scope='module')
def model_and_batch():
    model = randomize_bn(build_tiny(seed=3, detector='FastRFCN')).eval()
    model.test_cfg.rcnn.score_thr = 0.0  # keep every detection
    inputs, samples = make_batch(num_imgs=2, size=(96, 128), seed=4)
    return model, inputs, samples


def split_only(model):
    """The split path (dense stage, then mmdet's sparse stage on its score
    maps) with nothing else changed."""
    return copy.deepcopy(model).optimize_for_inference(
        fuse_bn=False, channels_last=False, fixed_shape_post=False)


def test_unoptimized_predict_is_rfcns(model_and_batch):
    model, inputs, samples = model_and_batch
    with torch.no_grad():
        want = TwoStageDetector.predict(model, inputs, copy.deepcopy(samples))
    for g, w in zip(predictions(model, inputs, samples), want):
        torch.testing.assert_close(g.bboxes, w.pred_instances.bboxes)


def test_split_predict_matches_mmdet_two_stage_predict(model_and_batch):
    # oracle: mmdet's own predict, where the RoI head computes conv5 and
    # the score maps from the conv4 features itself
    model, inputs, samples = model_and_batch
    with torch.no_grad():
        want = TwoStageDetector.predict(model, inputs, copy.deepcopy(samples))
    got = predictions(split_only(model), inputs, samples)
    for g, w in zip(got, [s.pred_instances for s in want]):
        assert len(g) == len(w) > 0
        torch.testing.assert_close(g.bboxes, w.bboxes, atol=0, rtol=0)
        torch.testing.assert_close(g.scores, w.scores, atol=0, rtol=0)
        torch.testing.assert_close(g.labels, w.labels)


def test_predict_with_given_proposals_uses_them(model_and_batch):
    model, inputs, samples = model_and_batch
    samples = copy.deepcopy(samples)
    for s in samples:
        from mmengine.structures import InstanceData
        s.proposals = InstanceData(bboxes=s.gt_instances.bboxes.clone())
    with torch.no_grad():
        want = TwoStageDetector.predict(model, inputs, copy.deepcopy(samples))
        got = split_only(model).predict(inputs, copy.deepcopy(samples))
    for g, w in zip(got, want):
        torch.testing.assert_close(g.pred_instances.bboxes,
                                   w.pred_instances.bboxes)
        torch.testing.assert_close(g.pred_instances.scores,
                                   w.pred_instances.scores)


def test_fused_channels_last_float32_keeps_detections(model_and_batch):
    model, inputs, samples = model_and_batch
    want = predictions(model, inputs, samples)
    with torch.no_grad():
        dense_want = model.dense_forward(inputs)
    # mmdet's post-processing (the fixed-shape one can order equal scores,
    # which this model has, differently: see test_post_processing.py)
    fast = copy.deepcopy(model).optimize_for_inference(
        dtype='float32',
        fuse_bn=True,
        channels_last=True,
        fixed_shape_post=False)
    assert fast.inference_mode == dict(
        dtype='float32',
        fuse_bn=True,
        channels_last=True,
        cuda_graph=False,
        fixed_shape_post=False)
    # every BatchNorm of the dense stage follows a conv and is folded
    assert not any(isinstance(m, _BatchNorm) for m in fast.modules())
    with torch.no_grad():
        dense_got = fast.dense_forward(inputs)
    for g, w in zip(dense_got[0] + dense_got[1] + [dense_got[2]],
                    dense_want[0] + dense_want[1] + [dense_want[2]]):
        assert g.dtype == torch.float32
        # float32 rounding of the folded weights, relative to the scale
        assert (g - w).abs().max() <= 1e-5 * w.abs().max()
    # the deltas may move by 1e-5 of their map's scale (above), and a delta
    # is multiplied by its box's width or height: a few hundredths of a
    # pixel (0.02 px measured with an AMD EPYC CPU's oneDNN kernels)
    assert_same_detections(
        predictions(fast, inputs, samples), want, 1e-4, box_atol=0.05)


def test_bfloat16_dense_stage_stays_close(model_and_batch):
    model, inputs, samples = model_and_batch
    with torch.no_grad():
        want = model.dense_forward(inputs)
    fast = copy.deepcopy(model).optimize_for_inference(dtype='bfloat16')
    assert next(fast.backbone.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        got = fast.dense_forward(inputs)
    for g, w in zip(got[0] + got[1] + [got[2]], want[0] + want[1] + [want[2]]):
        assert g.dtype == torch.float32  # the sparse stage runs in float32
        assert (g - w).abs().max() <= 0.05 * w.abs().max()
    dets = predictions(fast, inputs, samples)
    assert all(len(d) > 0 and d.bboxes.dtype == torch.float32 for d in dets)


def test_optimized_model_refuses_training_and_bad_arguments(model_and_batch):
    model, inputs, samples = model_and_batch
    fast = copy.deepcopy(model).optimize_for_inference()
    with pytest.raises(RuntimeError, match='cannot be trained'):
        fast.loss(inputs, copy.deepcopy(samples))
    with pytest.raises(ValueError, match="dtype must be one of"):
        copy.deepcopy(model).optimize_for_inference(dtype='int8')
    with pytest.raises(ValueError, match='dtype must be one of'):
        copy.deepcopy(model).optimize_for_inference(dtype=torch.float64)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='needs the model on a GPU'):
            copy.deepcopy(model).optimize_for_inference(cuda_graph=True)


@pytest.mark.cuda
@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_cuda_graph_inference_matches_eager(model_and_batch, dtype):
    model, inputs, samples = model_and_batch
    model = copy.deepcopy(model).cuda()
    inputs = inputs.cuda()
    samples = [s.to('cuda') for s in samples]
    eager = copy.deepcopy(model).optimize_for_inference(
        dtype=dtype, cuda_graph=False)
    graphed = copy.deepcopy(model).optimize_for_inference(dtype=dtype)
    assert graphed.inference_mode['cuda_graph']
    want = predictions(eager, inputs, samples)
    for _ in range(3):  # eager, captured and replayed, replayed
        assert_same_detections(
            predictions(graphed, inputs, samples), want, 1e-5)
    assert (graphed.graph_runner.captures, graphed.graph_runner.replays) == (1,
                                                                             2)
    other = inputs[:, :, :64]  # a second shape gets its own graph
    other_samples = copy.deepcopy(samples)
    for s in other_samples:
        s.set_metainfo(
            dict(
                img_shape=(64, 128),
                pad_shape=(64, 128),
                batch_input_shape=(64, 128)))
    for _ in range(2):
        assert_same_detections(
            predictions(graphed, other, other_samples),
            predictions(eager, other, other_samples), 1e-5)
    assert graphed.graph_runner.captures == 2
    if dtype == 'float32':
        # against the plain float32 model, with TF32 convolutions off (on by
        # default for cuDNN: 10-bit mantissas would move near-tied boxes),
        # and mmdet's post-processing (this model has equal scores, which
        # the fixed-shape one may order differently)
        saved = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        mmdet_post = copy.deepcopy(model).optimize_for_inference(
            dtype=dtype, cuda_graph=False, fixed_shape_post=False)
        try:
            assert_same_detections(
                predictions(mmdet_post, inputs, samples),
                predictions(model, inputs, samples), 1e-3)
        finally:
            torch.backends.cudnn.allow_tf32 = saved


def assert_no_ties(scores):
    assert scores.unique().numel() == scores.numel(), 'tied scores'


@pytest.mark.parametrize(
    'device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
def test_fixed_shape_predict_matches_mmdet_predict(device):
    # PS RoI Align: RoIs that only differ where pooling quantizes them
    # would give equal scores
    model = build_tiny(
        seed=3, roi_layer='PSRoIAlign', detector='FastRFCN').eval().to(device)
    inputs, samples = make_batch(
        num_imgs=2, size=(96, 128), seed=7, scale_factor=(1.5, 1.25))
    inputs = inputs.to(device)
    samples = [s.to(device) for s in samples]
    for thr in (0.0, 0.3):
        model.test_cfg.rcnn.score_thr = thr
        with torch.no_grad():
            want = model.predict(inputs, copy.deepcopy(samples))
            # on a GPU: one CUDA graph, captured on the second call
            fast = copy.deepcopy(model).optimize_for_inference(
                fuse_bn=False, channels_last=False)
            for _ in range(3 if device == 'cuda' else 1):
                got = fast.predict(inputs, copy.deepcopy(samples))
                for g, w in zip(got, want):
                    g, w = g.pred_instances, w.pred_instances
                    assert len(g) == len(w) > 0
                    assert_no_ties(w.scores)
                    torch.testing.assert_close(
                        g.bboxes, w.bboxes, rtol=0, atol=0)
                    torch.testing.assert_close(
                        g.scores, w.scores, rtol=0, atol=0)
                    assert torch.equal(g.labels, w.labels)
        if device == 'cuda':
            assert fast.graph_runner.replays == 2


def test_fixed_shape_forward_never_syncs():
    """What CUDA graph capture of all of inference needs: after the first
    call (which caches the anchors), no op waits for or copies from the
    host; mmdet's predict does both."""
    model = build_tiny(seed=0, detector='FastRFCN').eval()
    model.optimize_for_inference(fuse_bn=False, channels_last=False)
    inputs, samples = make_batch(num_imgs=2, size=(96, 128))
    info = torch.tensor([[96., 128., 1., 1.]] * 2)
    with torch.no_grad():
        model.fixed_shape_forward(inputs, info)
        with OpCensus() as rec:
            boxes, scores, labels, valid = model.fixed_shape_forward(
                inputs, info)
        assert rec.host_syncs == [] and valid.any()
        with OpCensus() as rec:
            build_tiny(seed=0).eval().predict(inputs, samples)
        assert len(rec.host_syncs) > 3


def test_checkpoints_load_across_rfcn_and_fast_rfcn(tmp_path):
    """The same modules: a checkpoint of either loads strictly into the
    other, and both give the same detections."""
    from mmengine.runner import load_checkpoint
    plain, fast = build_tiny(seed=3).eval(), build_tiny(
        seed=5, detector='FastRFCN').eval()
    assert plain.state_dict().keys() == fast.state_dict().keys()
    torch.save(dict(state_dict=plain.state_dict()), tmp_path / 'plain.pth')
    load_checkpoint(fast, str(tmp_path / 'plain.pth'), strict=True)
    inputs, samples = make_batch(num_imgs=1, seed=4)
    for g, w in zip(
            predictions(fast, inputs, samples),
            predictions(plain, inputs, samples)):
        torch.testing.assert_close(g.bboxes, w.bboxes, rtol=0, atol=0)
    torch.save(dict(state_dict=fast.state_dict()), tmp_path / 'fast.pth')
    load_checkpoint(
        build_tiny(seed=7), str(tmp_path / 'fast.pth'), strict=True)
