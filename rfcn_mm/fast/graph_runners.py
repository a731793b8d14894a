from collections import Counter
from typing import Any, Callable, Dict, Hashable, Optional, Tuple

import torch
from torch import Tensor


class CUDAGraphRunner:
    """Run ``fn(*inputs)`` by replaying a CUDA graph captured per input
    shape.

    ``fn`` must be free of host synchronisation and of data-dependent shapes
    (convolutions, normalisation and activations are; mmcv's NMS is not,
    :func:`rfcn_mm.ops.sorted_nms` is). Inputs are told apart by the
    (shape, strides, dtype, device) of each tensor and the autocast state.

    Test sets hold many image shapes, and a capture costs a few forward
    passes, so graphs go to the shapes that recur: a shape runs eagerly
    until it has been seen ``capture_after`` times, then it is warmed up on
    a side stream (which also lets ``cudnn.benchmark`` choose its
    algorithms) and captured. At most ``max_graphs`` graphs are kept; when
    they are all taken, a shape seen more often than the least used graph's
    shape replaces it (its memory is freed), otherwise it runs eagerly. So a
    stream of ever-new shapes never pays for captures it cannot reuse.

    The returned tensors of a replay are the graph's static outputs: the
    next replay of the same graph overwrites them, so consume or clone them
    first. With gradients enabled, or for inputs that are not on a GPU,
    ``fn`` runs eagerly.

    Args:
        fn (callable): Maps one or more tensors to a tensor or a nested
            tuple/list/dict of tensors.
        max_graphs (int): Graphs kept at once. Defaults to 16.
        capture_after (int): Sightings of a shape before it is captured.
            Defaults to 2.
        warmup (int): Side-stream runs right before a capture. Defaults
            to 2.
    """

    def __init__(self,
                 fn: Callable[[Tensor], Any],
                 max_graphs: int = 16,
                 capture_after: int = 2,
                 warmup: int = 2) -> None:
        if max_graphs < 1:
            raise ValueError(f'max_graphs must be >= 1, got {max_graphs}')
        if capture_after < 1:
            raise ValueError(
                f'capture_after must be >= 1, got {capture_after}')
        self.fn = fn
        self.max_graphs = max_graphs
        self.capture_after = capture_after
        self.warmup = warmup
        self.graphs: Dict[Hashable, Tuple] = {}
        self.seen: Counter = Counter()
        self.captures = self.replays = self.eager_calls = 0

    @staticmethod
    def _key(inputs: Tuple[Tensor, ...]) -> Hashable:
        autocast = torch.is_autocast_enabled('cuda')
        return tuple(
            (tuple(t.shape), t.stride(), t.dtype, t.device)
            for t in inputs) + (autocast, torch.get_autocast_dtype('cuda')
                                if autocast else None)

    @staticmethod
    def _graphable(inputs: Tuple[Tensor, ...]) -> bool:
        return all(t.is_cuda for t in inputs) and not torch.is_grad_enabled()

    def _capture(self, inputs: Tuple[Tensor, ...]) -> Tuple:
        static_in = tuple(t.clone() for t in inputs)
        # Autocast's weight-cast cache must not outlive the capture: casts
        # recorded into the graph have to be replayed, not cached.
        autocast = torch.is_autocast_enabled('cuda')
        amp = torch.autocast(
            'cuda',
            dtype=torch.get_autocast_dtype('cuda'),
            enabled=autocast,
            cache_enabled=False)
        self._warm_up(static_in, amp)
        self._before_record()
        graph, static_out = self._record(static_in, amp)
        return graph, static_in, static_out

    def _warm_up(self, static_in: Tuple[Tensor, ...], amp) -> None:
        """Run ``fn`` on a side stream before capturing it."""
        device = static_in[0].device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), amp:
            for _ in range(self.warmup):
                self.fn(*static_in)
        torch.cuda.current_stream(device).wait_stream(side)

    def _before_record(self) -> None:
        """Called between the warm-up and the capture."""

    def _record(self, static_in: Tuple[Tensor, ...], amp) -> Tuple:
        """Capture ``fn`` on ``static_in``: (graph, static outputs)."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), amp:
            static_out = self.fn(*static_in)
        return graph, static_out

    @staticmethod
    def _replay(entry: Tuple, inputs: Tuple[Tensor, ...]) -> Any:
        graph, static_in, static_out = entry
        for dst, src in zip(static_in, inputs):
            dst.copy_(src)
        graph.replay()
        return static_out

    def _entry(self, key: Hashable, inputs: Tuple[Tensor,
                                                  ...]) -> Optional[Tuple]:
        """The graph for ``key``, captured now if the policy says so, or
        None to run eagerly."""
        self.seen[key] += 1
        if key in self.graphs:
            return self.graphs[key]
        if self.seen[key] < self.capture_after:
            return None
        if len(self.graphs) >= self.max_graphs:
            victim = min(self.graphs, key=lambda k: self.seen[k])
            if self.seen[victim] >= self.seen[key]:
                return None
            del self.graphs[victim]
        self.graphs[key] = self._capture(inputs)
        self.captures += 1
        return self.graphs[key]

    def __call__(self, *inputs: Tensor) -> Any:
        entry = self._entry(self._key(inputs),
                            inputs) if self._graphable(inputs) else None
        if entry is None:
            self.eager_calls += 1
            return self.fn(*inputs)
        self.replays += 1
        return self._replay(entry, inputs)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(graphs={len(self.graphs)}, '
                f'captures={self.captures}, replays={self.replays}, '
                f'eager_calls={self.eager_calls})')


class TrainGraphRunner(CUDAGraphRunner):
    """Run a training step's forward and backward, ``fn(*inputs)``, by
    replaying a CUDA graph captured per input shape.

    ``fn`` computes the losses, calls ``backward`` on their (scaled) sum
    itself and returns the losses detached; it must be free of host
    synchronisation and data-dependent shapes
    (:meth:`FastRFCN.fixed_shape_loss` is). Graphs are kept and reused as
    by :class:`CUDAGraphRunner`.

    The gradients a graph computes live in its memory. After each replay
    every parameter's ``.grad`` holds them as eager autograd would leave
    it: set when it was None, added to it otherwise, so zeroing, clipping,
    loss scaling and gradient accumulation behave as usual. With gradients
    disabled, or for inputs that are not on a GPU, ``fn`` runs eagerly.

    Args:
        fn (callable): The step, see above.
        params (list[Tensor]): The parameters whose gradients ``fn``
            computes.
        max_graphs (int): Graphs kept at once; each holds the activation
            memory of one step. Defaults to 4.
        capture_after (int): Sightings of a shape before it is captured.
            Defaults to 2.
        warmup (int): Side-stream steps right before a capture (their
            gradients are discarded). Defaults to 2.
    """

    def __init__(self,
                 fn: Callable[..., Any],
                 params,
                 max_graphs: int = 4,
                 capture_after: int = 2,
                 warmup: int = 2) -> None:
        super().__init__(fn, max_graphs, capture_after, warmup)
        self.params = list(params)

    @staticmethod
    def _graphable(inputs: Tuple[Tensor, ...]) -> bool:
        return all(t.is_cuda for t in inputs) and torch.is_grad_enabled()

    def _capture(self, inputs: Tuple[Tensor, ...]) -> Tuple:
        held = [p.grad for p in self.params]
        graph, static_in, static_out = super()._capture(inputs)
        grads = [p.grad for p in self.params]
        for p, grad in zip(self.params, held):
            p.grad = grad
        return graph, static_in, static_out, grads

    def _before_record(self) -> None:
        # the capture starts from no gradient (the warm-up leaves some), so
        # the graph allocates its own and writes them whole at every replay
        # instead of adding to them
        for p in self.params:
            p.grad = None

    def _replay(self, entry: Tuple, inputs: Tuple[Tensor, ...]) -> Any:
        graph, static_in, static_out, grads = entry
        for p, grad in zip(self.params, grads):
            if p.grad is grad and grad is not None:
                p.grad = grad.clone()  # still held from the last replay
        out = super()._replay((graph, static_in, static_out), inputs)
        for p, grad in zip(self.params, grads):
            if grad is None:
                continue
            if p.grad is None:
                p.grad = grad
            else:
                p.grad.add_(grad)
        return out
