"""The split inference path and optimize_for_inference (fused BatchNorm,
channels_last, reduced precision, CUDA graphs)."""
import copy

import pytest
import torch
from mmdet.models.detectors import TwoStageDetector
from tiny_rfcn import build_tiny, make_batch
from torch.nn.modules.batchnorm import _BatchNorm

from rfcn_mm.models.utils import CUDAGraphRunner


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
    model = randomize_bn(build_tiny(seed=3)).eval()
    model.test_cfg.rcnn.score_thr = 0.0  # keep every detection
    inputs, samples = make_batch(num_imgs=2, size=(96, 128), seed=4)
    return model, inputs, samples


def test_split_predict_matches_mmdet_two_stage_predict(model_and_batch):
    # oracle: mmdet's own predict, where the RoI head computes conv5 and
    # the score maps from the conv4 features itself
    model, inputs, samples = model_and_batch
    with torch.no_grad():
        want = TwoStageDetector.predict(model, inputs, copy.deepcopy(samples))
    got = predictions(model, inputs, samples)
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
        got = model.predict(inputs, copy.deepcopy(samples))
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
    # which this model has, differently: see test_fixed_shape_post.py)
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


def test_graph_runner_runs_eagerly_without_gpu_or_with_grad():
    calls = []

    def fn(x):
        calls.append(x.shape)
        return x * 2

    runner = CUDAGraphRunner(fn, capture_after=1)
    x = torch.arange(4.)
    with torch.no_grad():
        torch.testing.assert_close(runner(x), x * 2)
    torch.testing.assert_close(runner(x), x * 2)
    assert runner.captures == 0 and runner.eager_calls == len(calls) == 2
    with pytest.raises(ValueError, match='max_graphs'):
        CUDAGraphRunner(fn, max_graphs=0)
    with pytest.raises(ValueError, match='capture_after'):
        CUDAGraphRunner(fn, capture_after=0)


class FakeGraphRunner(CUDAGraphRunner):
    """The runner's caching policy with a stand-in for CUDA capture."""

    @staticmethod
    def _graphable(inputs):
        return True

    def _capture(self, inputs):
        return ('graph', tuple(inputs[0].shape))

    def _replay(self, entry, inputs):
        assert entry == ('graph', tuple(inputs[0].shape))
        return self.fn(*inputs)


def test_graph_runner_captures_recurring_shapes_and_keeps_the_most_used():
    runner = FakeGraphRunner(lambda x: x + 1, max_graphs=2, capture_after=2)
    a, b, c = torch.zeros(1, 2), torch.zeros(2, 2), torch.zeros(3, 2)

    def call(x):
        torch.testing.assert_close(runner(x), x + 1)
        return (runner.captures, runner.replays, runner.eager_calls)

    assert call(a) == (0, 0, 1)  # first sighting: eager
    assert call(a) == (1, 1, 1)  # second: captured and replayed
    assert call(a) == (1, 2, 1)
    assert call(b) == (1, 2, 2)
    assert call(b) == (2, 3, 2)  # a: 3 sightings, b: 2
    assert call(c) == (2, 3, 3)
    assert call(c) == (2, 3, 4)  # full, and c is not seen more than b
    assert call(c) == (3, 4, 4)  # now it is: c replaces b
    assert set(runner.graphs) == {runner._key(
        (a, )), runner._key((c, ))} and len(runner.seen) == 3
    assert call(b) == (3, 4, 5)  # b (3) does not beat a or c (3)
    assert 'captures=3, replays=4, eager_calls=5' in repr(runner)


@pytest.mark.cuda
def test_graph_runner_replays_cuda_graphs():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1).cuda().eval()

    def fn(x):
        return (conv(x).relu(), [x.sum(dim=1)])

    runner = CUDAGraphRunner(fn, max_graphs=2, capture_after=1)
    a = torch.randn(1, 3, 32, 48, device='cuda')
    b = torch.randn(1, 3, 48, 32, device='cuda')
    c = torch.randn(2, 3, 32, 48, device='cuda')
    with torch.no_grad():
        for x in (a, b, a, b, a * 3):  # new values, same shapes: replays
            got = runner(x)
            want = fn(x)
            torch.testing.assert_close(got[0], want[0])
            torch.testing.assert_close(got[1][0], want[1][0])
        assert (runner.captures, runner.replays) == (2, 5)
        for _ in range(3):  # the third sighting of c beats b's two
            torch.testing.assert_close(runner(c)[0], fn(c)[0])
        assert runner.captures == 3 and len(runner.graphs) == 2
        assert runner.eager_calls == 2
        amp_runner = CUDAGraphRunner(fn, capture_after=1)
        with torch.autocast('cuda', dtype=torch.bfloat16):
            for x in (a, a * 2):  # captured under autocast, then replayed
                got = amp_runner(x)
                assert got[0].dtype == torch.bfloat16
                torch.testing.assert_close(got[0], fn(x)[0])
        assert (amp_runner.captures, amp_runner.replays) == (1, 2)
        plain = amp_runner(a)  # autocast off: another key
        assert plain[0].dtype == torch.float32
        assert amp_runner.captures == 2


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
