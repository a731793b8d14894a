"""FastRFCN's training step: fixed-shape losses, the CUDA-graph
train_step and its fallbacks."""
import warnings

import pytest
import torch
from helpers.fast_training import batch, build, data_batch, run_steps, sgd
from helpers.tiny_rfcn import build_tiny, make_batch, overfit_and_check_boxes


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
    which asks FastRFCN.loss for the losses: the graphs cannot apply, and the
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


@pytest.mark.slow
def test_fixed_shape_training_overfits_one_batch_and_recovers_its_boxes():
    model = build_tiny(k=3, detector='FastRFCN')
    model.train_cfg['fixed_shape'] = True
    overfit_and_check_boxes(model)
