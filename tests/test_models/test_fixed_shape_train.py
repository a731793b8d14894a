"""The fixed-shape training losses against mmdet's own assigner, sampler,
targets and losses (the oracle), and the claim that they never read a value
back to the host."""
import copy
import warnings
from unittest import mock

import pytest
import torch
from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.models.task_modules.samplers import RandomSampler
from mmdet.registry import MODELS
from mmengine.structures import InstanceData
from tiny_rfcn import make_batch, tiny_model_cfg

from rfcn_mm.models.utils.fixed_shape_train import (iou, max_iou_assign,
                                                    pack_ground_truth,
                                                    random_sample)
from rfcn_mm.utils import OpCensus

# every sample taken: the mmdet path and the fixed-shape path then see the
# same samples without sharing a random stream
ALL = 10**6
OHEM_NMS = dict(type='RFCNOHEMSampler', num=32, nms_thr=0.7)
OHEM_ALL = dict(type='RFCNOHEMSampler', num=ALL)  # positives kept too
RANDOM_ROIS = dict(
    type='RandomSampler',
    num=ALL,
    pos_fraction=0.5,
    neg_pos_ub=-1,
    add_gt_as_proposals=True)


def random_boxes(g, n, size=100.):
    xy = torch.rand(n, 2, generator=g) * size
    return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * size / 2],
                     1)


@pytest.mark.parametrize('kwargs', [
    dict(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3),
    dict(
        pos_iou_thr=0.5,
        neg_iou_thr=0.5,
        min_pos_iou=0.5,
        match_low_quality=False),
    dict(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.5), min_pos_iou=0.2),
    dict(
        pos_iou_thr=0.6,
        neg_iou_thr=0.4,
        min_pos_iou=0.1,
        gt_max_assign_all=False),
])
def test_assign_matches_max_iou_assigner(kwargs):
    assigner = MaxIoUAssigner(**kwargs)
    g = torch.Generator().manual_seed(1)
    n, num_gts, m = 4, [3, 0, 5, 2], 60
    gts = torch.zeros(n, 6, 4)
    gt_valid = torch.zeros(n, 6, dtype=torch.bool)
    labels = torch.zeros(n, 6, dtype=torch.long)
    for i, k in enumerate(num_gts):
        gts[i, :k] = random_boxes(g, k)
        gt_valid[i, :k] = True
    # two identical ground-truth boxes: the later one must win the priors
    # both claim, as in mmdet's loop
    gts[2, 1] = gts[2, 0]
    priors = random_boxes(g, n * m).view(n, m, 4)
    priors[:, 1] = priors[:, 0]  # tied priors: all of them are matched
    prior_valid = torch.rand(n, m, generator=g) > 0.2
    ours = max_iou_assign(assigner, iou(gts, priors), gt_valid, prior_valid)
    for i, k in enumerate(num_gts):
        keep = prior_valid[i]
        ref = assigner.assign(
            InstanceData(priors=priors[i][keep]),
            InstanceData(bboxes=gts[i, :k], labels=labels[i, :k]))
        assert torch.equal(ours[i][keep], ref.gt_inds)
        assert (ours[i][~keep] == -1).all()
    assert (ours > 0).any() and (ours == 0).any()


def test_iou_is_mmdets_bbox_overlaps():
    from mmdet.structures.bbox import bbox_overlaps
    g = torch.Generator().manual_seed(4)
    a = random_boxes(g, 3 * 7).view(3, 7, 4)
    b = random_boxes(g, 3 * 50).view(3, 50, 4)
    a[0, 0] = torch.tensor([5., 5., 5., 9.])  # zero area
    b[1, :7] = a[1]  # identical boxes: IoU 1
    assert torch.equal(iou(a, b), bbox_overlaps(a, b))


def keyed_choice(keys):
    """RandomSampler.random_choice that takes the gallery's smallest keys."""

    def choice(self, gallery, num):
        return gallery[keys[gallery].argsort()[:num]]

    return choice


@pytest.mark.parametrize('num,pos_fraction,neg_pos_ub', [(16, 0.25, -1),
                                                         (16, 0.5, 3),
                                                         (64, 0.5, -1),
                                                         (200, 0.5, -1)])
def test_random_sample_matches_random_sampler(num, pos_fraction, neg_pos_ub):
    sampler = RandomSampler(
        num, pos_fraction, neg_pos_ub=neg_pos_ub, add_gt_as_proposals=False)
    g = torch.Generator().manual_seed(2)
    n, m = 3, 120
    gt_inds = torch.randint(-1, 4, (n, m), generator=g)
    gt_inds[1] = torch.randint(-1, 1, (m, ), generator=g)  # no positives
    gt_inds[2, :100] = 1  # more positives than the quota
    keys = torch.rand(n, m, generator=g)
    pos, neg = random_sample(sampler, gt_inds, keys)
    for i in range(n):
        result = AssignResult(4, gt_inds[i], torch.zeros(m),
                              torch.zeros(m, dtype=torch.long))
        with mock.patch.object(RandomSampler, 'random_choice',
                               keyed_choice(keys[i])):
            ref = sampler.sample(
                result, InstanceData(priors=torch.zeros(m, 4)),
                InstanceData(
                    bboxes=torch.zeros(4, 4),
                    labels=torch.zeros(4, dtype=torch.long)))
        assert torch.equal(pos[i].nonzero()[:, 0], ref.pos_inds)
        assert torch.equal(neg[i].nonzero()[:, 0], ref.neg_inds)


def build(sampler=None, class_agnostic=True, fixed_shape=False):
    cfg = tiny_model_cfg(sampler=sampler, class_agnostic=class_agnostic)
    cfg.train_cfg.rpn.sampler.num = ALL
    cfg.train_cfg.fixed_shape = fixed_shape
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def batch(num_gts=(3, 1, 0)):
    inputs, samples = make_batch(num_imgs=len(num_gts), num_gts=max(num_gts))
    for s, k in zip(samples, num_gts):
        s.gt_instances = s.gt_instances[:k]
    return inputs, samples


def scalar(v):
    return v[0] if isinstance(v, list) else v


@pytest.mark.parametrize('sampler,class_agnostic', [(None, True),
                                                    (OHEM_ALL, False),
                                                    (OHEM_NMS, True),
                                                    (RANDOM_ROIS, True),
                                                    (RANDOM_ROIS, False)])
def test_losses_and_gradients_match_mmdet(sampler, class_agnostic):
    model = build(sampler, class_agnostic)
    inputs, samples = batch()
    ref = model.loss(inputs, copy.deepcopy(samples))
    sum(scalar(v) for k, v in ref.items() if 'loss' in k).backward()
    ref_grads = {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }
    model.zero_grad()
    model.train_cfg['fixed_shape'] = True
    ours = model.loss(inputs, copy.deepcopy(samples))
    assert set(ours) == set(ref)
    for k in ref:
        torch.testing.assert_close(
            scalar(ours[k]), scalar(ref[k]), rtol=1e-5, atol=1e-6, msg=k)
    sum(scalar(v) for k, v in ours.items() if 'loss' in k).backward()
    grads = {
        n: p.grad
        for n, p in model.named_parameters() if p.grad is not None
    }
    assert set(grads) == set(ref_grads)
    for n, grad in grads.items():
        torch.testing.assert_close(
            grad, ref_grads[n], rtol=1e-4, atol=1e-7, msg=n)
    assert scalar(ref['loss_rpn_bbox']) > 0 and ref['loss_bbox'] > 0


def test_random_samples_have_mmdets_sizes():
    """With the configs' real sample sizes: at most num * pos_fraction
    positives, num in all when there are enough candidates."""
    model = build(
        RANDOM_ROIS | dict(num=32, pos_fraction=0.25), fixed_shape=True)
    model.train_cfg.rpn.sampler.num = 256
    model.rpn_head.sampler.num = 256
    inputs, samples = batch()
    args = model.loss_inputs(inputs, samples)
    x = model.extract_feat(inputs)
    cls = model.rpn_head(x)[0][0]
    priors, _ = model._rpn_anchor_grid(cls)
    gt_boxes, gt_valid = args[2], args[4]
    valid = torch.ones(3, priors.size(0), dtype=torch.bool)
    gt_inds = max_iou_assign(model.rpn_head.assigner,
                             iou(gt_boxes, priors[None].expand(3, -1, -1)),
                             gt_valid, valid)
    pos, neg = random_sample(model.rpn_head.sampler, gt_inds)
    assert (pos.sum(1) <= 128).all() and (pos.sum(1) > 0)[:2].all()
    assert ((pos | neg).sum(1) == 256).all()
    assert not (pos & neg).any()
    # different draws differ
    pos2, neg2 = random_sample(model.rpn_head.sampler, gt_inds)
    assert not torch.equal(neg, neg2)


@pytest.mark.parametrize('sampler', [None, OHEM_NMS, RANDOM_ROIS])
def test_fixed_shape_loss_never_syncs(sampler):
    model = build(sampler, fixed_shape=True)
    inputs, samples = batch()
    args = model.loss_inputs(inputs, samples)
    model.fixed_shape_loss(*args)  # anchors cached, as after one step
    with OpCensus() as rec:
        losses = model.fixed_shape_loss(*args)
        sum(scalar(v) for k, v in losses.items() if 'loss' in k).backward()
    assert rec.host_syncs == []
    # the recorder does see mmdet's path synchronise
    with OpCensus() as rec:
        model.train_cfg['fixed_shape'] = False
        model.loss(inputs, copy.deepcopy(samples))
    assert len(rec.host_syncs) > 10


def test_ground_truth_slots():
    inputs, samples = batch((3, 0, 9))
    boxes, labels, valid = pack_ground_truth(samples, 'cpu')
    assert boxes.shape == (3, 16, 4) and valid.sum(1).tolist() == [3, 0, 9]
    assert torch.equal(boxes[2, :9], samples[2].gt_instances.bboxes)
    assert torch.equal(labels[0, :3], samples[0].gt_instances.labels)


def test_unsupported_training_is_named():
    cfg = tiny_model_cfg()
    cfg.train_cfg.fixed_shape = True
    cfg.train_cfg.rpn.assigner.ignore_iof_thr = 0.5
    cfg.roi_head.bbox_head.loss_bbox = dict(type='GIoULoss')
    cfg.train_cfg.rpn_proposal.max_per_img = -1
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    msg = str(err.value)
    assert 'train_cfg.rpn.assigner: ignore_iof_thr' in msg
    assert 'roi_head.bbox_head.loss_bbox must be SmoothL1Loss' in msg
    assert 'rpn_proposal.max_per_img must be positive' in msg


@pytest.mark.cuda
@pytest.mark.parametrize('sampler', [None, RANDOM_ROIS])
def test_cuda_matches_cpu(sampler):
    model = build(sampler, fixed_shape=True)
    inputs, samples = batch()
    args = model.loss_inputs(inputs, samples)
    ref = model.fixed_shape_loss(*args)
    model.cuda()
    ours = model.fixed_shape_loss(*[a.cuda() for a in args])
    for k in ref:
        torch.testing.assert_close(
            scalar(ours[k]).cpu(), scalar(ref[k]), rtol=1e-4, atol=1e-5, msg=k)


def test_bfloat16_autocast():
    """Under AMP the RPN losses stay mmdet's; the RoI losses differ a little
    because mmdet decodes proposals from bfloat16 scores (many ties) while
    the fixed-shape path decodes them in float32."""
    model = build()
    inputs, samples = batch()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ref = model.loss(inputs, copy.deepcopy(samples))
        model.train_cfg['fixed_shape'] = True
        ours = model.loss(inputs, copy.deepcopy(samples))
    for k in ('loss_rpn_cls', 'loss_rpn_bbox'):
        torch.testing.assert_close(scalar(ours[k]), scalar(ref[k]))
    torch.testing.assert_close(
        ours['loss_cls'], ref['loss_cls'], rtol=0.02, atol=0)
    sum(scalar(v) for k, v in ours.items() if 'loss' in k).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def data_batch(inputs, samples):
    """What a dataloader gives train_step: uint8 images and samples."""
    return dict(
        inputs=[img.to(torch.uint8) for img in inputs],
        data_samples=copy.deepcopy(samples))


def sgd(model, amp=False):
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if amp:
        return AmpOptimWrapper(optimizer=opt, dtype=torch.bfloat16)
    return OptimWrapper(opt)


def run_steps(model, steps, device='cpu', amp=False):
    model.to(device)
    wrapper = sgd(model, amp)
    inputs, samples = batch()
    logs = [
        model.train_step(data_batch(inputs, samples), wrapper)
        for _ in range(steps)
    ]
    return logs, {n: p.detach().cpu() for n, p in model.named_parameters()}


def test_graph_train_step_runs_eagerly_off_gpu_and_updates_as_mmengine():
    """On the CPU, train_cfg.cuda_graph=True takes the project's train_step
    (runner, loss scaling, counting, optimizer step), which must update the
    weights exactly as mmengine's own train_step does."""
    ref_logs, ref = run_steps(build(fixed_shape=True), 3)
    model = build(fixed_shape=True)
    model.train_cfg['cuda_graph'] = True
    logs, ours = run_steps(model, 3)
    assert model.train_graph_runner.eager_calls == 3
    for a, b in zip(ref_logs, logs):
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], msg=k)
    for n in ref:
        torch.testing.assert_close(ours[n], ref[n], msg=n)


def graph_warnings(caught):
    return [str(w.message) for w in caught if 'cuda_graph' in str(w.message)]


def test_graph_flag_under_ddp_warns_and_trains_eagerly(tmp_path):
    """Under DistributedDataParallel mmengine runs the wrapper's train_step,
    which asks RFCN.loss for the losses: the graphs cannot apply, and the
    user is told so once; the step itself equals the fixed-shape one."""
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    ref_logs, ref = run_steps(build(fixed_shape=True), 2)
    model = build(fixed_shape=True)
    model.train_cfg['cuda_graph'] = True
    store = dist.FileStore(str(tmp_path / 'store'), 1)
    dist.init_process_group('gloo', store=store, rank=0, world_size=1)
    try:
        ddp = MMDistributedDataParallel(module=model)
        wrapper = sgd(ddp)
        inputs, samples = batch()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            logs = [
                ddp.train_step(data_batch(inputs, samples), wrapper)
                for _ in range(2)
            ]
    finally:
        dist.destroy_process_group()
    said = graph_warnings(caught)
    assert len(said) == 1 and 'DistributedDataParallel' in said[0], said
    assert model.train_graph_runner is None
    for a, b in zip(ref_logs, logs):
        for k in a:
            torch.testing.assert_close(b[k], a[k], msg=k)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), ref[n], msg=n)


def test_graph_train_step_does_not_warn():
    model = build(fixed_shape=True)
    model.train_cfg['cuda_graph'] = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        run_steps(model, 2)
    assert graph_warnings(caught) == []


class FakeGraph:
    """Stands in for a captured graph on the CPU. A replay recomputes the
    gradients into the tensors the capture produced, adding to them where
    the capture found a gradient already there (as a recorded accumulation
    would), and leaves every ``.grad`` attribute as it was, as a real
    replay does."""

    def __init__(self, fn, params, static_in):
        self.fn, self.params, self.static_in = fn, params, static_in
        self.adds = [p.grad is not None for p in params]
        self.out = dict(fn(*static_in))
        self.grads = [p.grad for p in params]

    def replay(self):
        held = [p.grad for p in self.params]
        for p in self.params:
            p.grad = None
        out = self.fn(*self.static_in)
        for p, g, add in zip(self.params, self.grads, self.adds):
            g.add_(p.grad) if add else g.copy_(p.grad)
        for p, grad in zip(self.params, held):
            p.grad = grad
        self.out.update(out)


def test_train_graph_runner_leaves_gradients_as_autograd_would():
    from rfcn_mm.models.utils import TrainGraphRunner
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    params = list(net.parameters())

    def step(x):
        loss = net(x).square().sum()
        loss.backward()
        return dict(loss=loss.detach())

    def warm_up(self, static_in, amp):
        for _ in range(self.warmup):
            step(*static_in)

    def record(self, static_in, amp):
        graph = FakeGraph(step, params, static_in)
        return graph, graph.out

    runner = TrainGraphRunner(step, params, capture_after=1)
    xs = [torch.randn(4, 3) for _ in range(4)]
    always = staticmethod(lambda inputs: True)
    with mock.patch.object(TrainGraphRunner, '_graphable', always), \
            mock.patch.object(TrainGraphRunner, '_warm_up', warm_up), \
            mock.patch.object(TrainGraphRunner, '_record', record):
        got = []
        net.zero_grad(set_to_none=True)
        runner(xs[0])
        got.append([p.grad.clone() for p in params])  # set
        runner(xs[1])
        got.append([p.grad.clone() for p in params])  # accumulated
        net.zero_grad(set_to_none=False)
        runner(xs[2])
        got.append([p.grad.clone() for p in params])  # added to zeros
        net.zero_grad(set_to_none=True)
        runner(xs[3])
        got.append([p.grad.clone() for p in params])
    assert runner.replays == 4 and runner.captures == 1
    want = []
    for i, x in enumerate(xs):
        if i != 1:
            net.zero_grad(set_to_none=True)
        step(x)
        want.append([p.grad.clone() for p in params])
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            torch.testing.assert_close(a, b)


def test_cuda_graph_needs_fixed_shape():
    cfg = tiny_model_cfg()
    cfg.train_cfg.cuda_graph = True
    with pytest.raises(ValueError, match='needs train_cfg.fixed_shape'):
        MODELS.build(cfg)


@pytest.mark.cuda
@pytest.mark.parametrize('amp', [False, True])
def test_cuda_graph_training_matches_eager_on_gpu(amp):
    """Every sample taken (no randomness), so replayed steps must update the
    weights as eager steps do, also under AMP (AmpOptimWrapper, bfloat16,
    its loss scaler inside the graph)."""
    ref_logs, ref = run_steps(build(fixed_shape=True), 4, 'cuda', amp)
    model = build(fixed_shape=True)
    model.train_cfg['cuda_graph'] = True
    logs, ours = run_steps(model, 4, 'cuda', amp)
    runner = model.train_graph_runner
    assert runner.captures == 1 and runner.replays == 3, runner
    for a, b in zip(ref_logs, logs):
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    for n in ref:
        torch.testing.assert_close(ours[n], ref[n], rtol=1e-4, atol=1e-6)


def test_bucket_pad_gives_few_batch_shapes():
    from mmdet.structures import DetDataSample

    from rfcn_mm.models import BatchBucketPad
    pad = MODELS.build(
        dict(type='BatchBucketPad', sizes=[(1008, 608), (608, 1008)]))
    assert isinstance(pad, BatchBucketPad)
    for (h, w), want in [((600, 1000), (608, 1008)), ((608, 800), (608, 1008)),
                         ((1000, 592), (1008, 608)),
                         ((1008, 608), (1008, 608)),
                         ((1024, 608), (1024, 608))]:  # too large: kept
        inputs = torch.rand(2, 3, h, w)
        samples = [DetDataSample(metainfo=dict(img_shape=(h, w)))]
        out, samples = pad(inputs, samples)
        assert tuple(out.shape[-2:]) == want
        assert torch.equal(out[..., :h, :w], inputs)
        if want != (h, w):
            assert (out[..., h:, :] == 0).all() and (out[..., w:] == 0).all()
            assert samples[0].batch_input_shape == want
            assert samples[0].pad_shape == want
    with pytest.raises(ValueError, match='sizes must be'):
        BatchBucketPad(sizes=[(0, 10)])


def test_image_without_inside_anchors_is_refused_as_mmdet_does():
    """tiny anchors are at least 16 px (scale 2 x stride 16 x ratio 0.5):
    none lies inside a 12 x 200 image."""
    model = build(fixed_shape=True)
    inputs, samples = make_batch(num_imgs=1, size=(12, 200))
    with pytest.raises(ValueError, match='no RPN anchor lies inside'):
        model.loss(inputs, samples)
    model.train_cfg['fixed_shape'] = False
    with pytest.raises(ValueError, match='no valid anchor inside'):
        model.loss(inputs, samples)
