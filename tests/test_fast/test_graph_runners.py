"""CUDAGraphRunner and TrainGraphRunner."""
from unittest import mock

import pytest
import torch

from rfcn_mm.fast import CUDAGraphRunner, TrainGraphRunner


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
