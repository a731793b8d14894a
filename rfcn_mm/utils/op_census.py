"""What a piece of code asks of the device: the aten ops it dispatches and,
among them, those that make a CUDA device wait for the host.

On a GPU each non-view op is roughly one kernel launch (the cost a CUDA
graph removes), and each host synchronisation idles the GPU while the CPU
catches up (and makes the code impossible to capture in a graph). The
counts can be taken on a CPU too, with two differences: copies between the
host and a GPU (``.cpu()``, ``.cuda()``) do not happen there, and every
tensor made from host data counts, also those that stay on the host.
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

# aten ops that make a CUDA device wait for the host: an output shape that
# depends on the data, or a value read back; and lift_fresh, a tensor made
# from host data (a copy from the host, which a CUDA graph cannot hold)
HOST_SYNC_OPS = frozenset({
    'nonzero', 'masked_select', '_unique', '_unique2', 'unique_dim',
    'unique_consecutive', 'bincount', '_local_scalar_dense', 'item',
    'is_nonzero', 'equal', 'lift_fresh', 'lift_fresh_copy'
})


def _device_type(t):
    return t.device.type if isinstance(t, torch.Tensor) else None


def _blocking_transfer(src, dst_type, non_blocking) -> bool:
    """A copy of ``src`` to a ``dst_type`` device that the host waits for:
    any copy from a GPU to the host (its value is needed there), and a copy
    from the host to a GPU unless ``non_blocking`` (torch synchronises the
    stream after a blocking one)."""
    src_type = _device_type(src)
    if src_type == 'cuda' and dst_type == 'cpu':
        return True
    return src_type == 'cpu' and dst_type == 'cuda' and not non_blocking


def is_host_sync(func, args=(), kwargs=None) -> bool:
    """Whether the aten op ``func`` called with ``args``/``kwargs`` makes a
    CUDA device wait for the host: the ops named in :data:`HOST_SYNC_OPS`,
    indexing with a boolean mask, ``repeat_interleave`` with tensor repeats
    and no ``output_size``, and blocking copies between the host and a
    GPU."""
    name = str(func)  # e.g. 'aten.index.Tensor'
    kwargs = kwargs or {}
    parts = name.split('.')
    if len(parts) > 1 and parts[1] in HOST_SYNC_OPS:
        return True
    if name == 'aten.repeat_interleave.Tensor':
        # the output size is the sum of the repeats unless it is given
        return kwargs.get('output_size') is None
    if name.startswith('aten.index.') and len(args) > 1:
        return any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool
            for i in args[1] or [])
    if name.startswith('aten._to_copy.') and args:
        device = kwargs.get('device')
        return device is not None and _blocking_transfer(
            args[0],
            torch.device(device).type, kwargs.get('non_blocking', False))
    if name.startswith('aten.copy_.') and len(args) > 1:
        non_blocking = args[2] if len(args) > 2 else kwargs.get(
            'non_blocking', False)
        return _blocking_transfer(args[1], _device_type(args[0]), non_blocking)
    return False


class OpCensus(TorchDispatchMode):
    """Counts the aten ops run under it and records the names of those that
    make a CUDA device wait for the host (see :func:`is_host_sync`).

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
