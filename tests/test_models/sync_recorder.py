"""An op recorder for tests that claim a code path never waits for or
copies from the host (what CUDA graph capture needs)."""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

# ops that make a CUDA device wait for the host, and lift_fresh, a tensor
# made from host data (a copy from the host, which a CUDA graph cannot hold)
SYNCING = ('nonzero', '_local_scalar_dense', 'unique', 'masked_select',
           'is_nonzero', 'item', 'lift_fresh')


class SyncRecorder(TorchDispatchMode):
    """Records every op that would make a CUDA device wait for the host or
    copy from it."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if any(s in name
               for s in SYNCING) or (name.startswith('aten.index.') and any(
                   isinstance(i, torch.Tensor) and i.dtype == torch.bool
                   for i in (args[1] if len(args) > 1 else []) or [])):
            self.found.append(name)
        return func(*args, **(kwargs or {}))
