from collections import OrderedDict
from typing import Any, Callable, Hashable, Tuple

import torch
from torch import Tensor


class CUDAGraphRunner:
    """Run ``fn(inputs)`` by replaying a CUDA graph captured per input shape.

    ``fn`` must be free of host synchronisation and of data-dependent shapes
    (convolutions, normalisation and activations are; NMS is not). The first
    call with a new (shape, strides, dtype, device, autocast state)
    warms ``fn`` up on a side stream (which also lets
    ``cudnn.benchmark`` choose its algorithms), captures one graph and keeps
    it; later calls copy the input into the graph's static input and
    replay. At most ``max_graphs`` graphs are kept, the least recently used
    one is dropped (with its memory) when a new shape needs room.

    The returned tensors are the graph's static outputs: the next call with
    the same shape overwrites them, so consume or clone them first. With
    gradients enabled, or for inputs that are not on a GPU, ``fn`` runs
    eagerly.

    Args:
        fn (callable): Maps one tensor to a tensor or a nested
            tuple/list/dict of tensors.
        max_graphs (int): Graphs kept at once. Defaults to 8.
        warmup (int): Eager runs before a capture. Defaults to 3.
    """

    def __init__(self,
                 fn: Callable[[Tensor], Any],
                 max_graphs: int = 8,
                 warmup: int = 3) -> None:
        if max_graphs < 1:
            raise ValueError(f'max_graphs must be >= 1, got {max_graphs}')
        self.fn = fn
        self.max_graphs = max_graphs
        self.warmup = warmup
        self.graphs: 'OrderedDict[Hashable, Tuple]' = OrderedDict()
        self.captures = 0

    @staticmethod
    def _key(inputs: Tensor) -> Hashable:
        autocast = torch.is_autocast_enabled('cuda')
        return (tuple(inputs.shape), inputs.stride(),
                inputs.dtype, inputs.device, autocast,
                torch.get_autocast_dtype('cuda') if autocast else None)

    def _capture(self, inputs: Tensor) -> Tuple:
        static_in = inputs.clone()
        autocast = torch.is_autocast_enabled('cuda')
        # Autocast's weight-cast cache must not outlive the capture: casts
        # recorded into the graph have to be replayed, not cached.
        amp = torch.autocast(
            'cuda',
            dtype=torch.get_autocast_dtype('cuda'),
            enabled=autocast,
            cache_enabled=False)
        side = torch.cuda.Stream(device=inputs.device)
        side.wait_stream(torch.cuda.current_stream(inputs.device))
        with torch.cuda.stream(side), amp:
            for _ in range(self.warmup):
                self.fn(static_in)
        torch.cuda.current_stream(inputs.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), amp:
            static_out = self.fn(static_in)
        self.captures += 1
        return graph, static_in, static_out

    def __call__(self, inputs: Tensor) -> Any:
        if not inputs.is_cuda or torch.is_grad_enabled():
            return self.fn(inputs)
        key = self._key(inputs)
        entry = self.graphs.get(key)
        if entry is None:
            while len(self.graphs) >= self.max_graphs:
                self.graphs.popitem(last=False)
            entry = self.graphs[key] = self._capture(inputs)
        self.graphs.move_to_end(key)
        graph, static_in, static_out = entry
        static_in.copy_(inputs)
        graph.replay()
        return static_out
