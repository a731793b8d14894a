"""What a piece of code asks of the device: the aten ops it dispatches and,
among them, those that make a CUDA device wait for the host.

Both counts are the same on every device, so they can be taken on a CPU:
on a GPU each non-view op is roughly one kernel launch (the cost a CUDA
graph removes), and each host synchronisation idles the GPU while the CPU
catches up (and makes the code impossible to capture in a graph).
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

# ops that make a CUDA device wait for the host (a data-dependent shape or
# a value read back), and lift_fresh, a tensor made from host data (a copy
# from the host, which a CUDA graph cannot hold)
HOST_SYNC_OPS = ('nonzero', '_local_scalar_dense', 'unique', 'masked_select',
                 'is_nonzero', 'item', 'lift_fresh')


def _is_cuda(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_cuda


def is_host_sync(func, args=(), kwargs=None) -> bool:
    """Whether the aten op ``func`` called with ``args``/``kwargs`` makes a
    CUDA device wait for or copy from the host: the ops named in
    :data:`HOST_SYNC_OPS`, indexing with a boolean mask, and copies from a
    CUDA tensor to the host."""
    name = str(func)
    kwargs = kwargs or {}
    if any(s in name for s in HOST_SYNC_OPS):
        return True
    if name.startswith('aten.index.') and len(args) > 1:
        return any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool
            for i in args[1] or [])
    if name.startswith('aten._to_copy.') and args and _is_cuda(args[0]):
        device = kwargs.get('device')
        return device is not None and torch.device(device).type == 'cpu'
    if name.startswith('aten.copy_.') and len(args) > 1:
        dst, src = args[0], args[1]
        return _is_cuda(src) and isinstance(dst, torch.Tensor) and \
            dst.device.type == 'cpu'
    return False


class OpCensus(TorchDispatchMode):
    """Counts the aten ops run under it and records the names of those that
    make a CUDA device wait for or copy from the host (see
    :func:`is_host_sync`).

    Ops of an autograd backward run inside the ``with`` block are counted
    too. Views are ops here, though they launch no kernel.

    Example:
        >>> with OpCensus() as census:
        ...     loss = model.loss(inputs, data_samples)
        >>> census.num_ops, census.host_syncs
    """

    def __init__(self):
        super().__init__()
        self.num_ops = 0
        self.host_syncs = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.num_ops += 1
        if is_host_sync(func, args, kwargs):
            self.host_syncs.append(str(func))
        return func(*args, **(kwargs or {}))
