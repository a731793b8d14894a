"""A tiny model and dataset for tests that drive mmengine's Runner."""
import os
import time

import torch
import torch.nn as nn
from mmdet.registry import DATASETS, HOOKS, MODELS
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset


@MODELS.register_module()
class TinyRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self._steps = 0

    def forward(self, x, y=None, mode='tensor'):
        out = self.fc(x).squeeze(1)
        if mode == 'loss':
            loss = ((out - y)**2).mean()
            self._steps += 1
            if self._nan_now():
                loss = loss * float('nan')
            return dict(loss=loss)
        return out

    def _nan_now(self):
        """Whether this step's loss is made NaN: at step $TINY_NAN_AT
        (1-based) on rank $TINY_NAN_RANK (default 0), if set."""
        at = int(os.environ.get('TINY_NAN_AT', 0))
        if not at or self._steps != at:
            return False
        from mmengine.dist import get_rank
        return get_rank() == int(os.environ.get('TINY_NAN_RANK', 0))


@DATASETS.register_module()
class TinyRegressionDataset(Dataset):
    metainfo = dict(classes=('a', ))

    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(4, generator=g)
        return dict(x=x, y=x.sum() * 0.5 + 1)


@HOOKS.register_module()
class StallHook(Hook):
    """After iteration $TINY_STALL_AT (1-based) writes the file
    $TINY_STALL_MARKER and sleeps, so that a test can kill the process at a
    known point; with $TINY_STALL_RANK set, only that rank does, with
    $TINY_STALL_WORK_DIR set, only a run whose work dir ends with it. Does
    nothing when the variables are unset."""

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        at = int(os.environ.get('TINY_STALL_AT', 0))
        self.marker = os.environ.get('TINY_STALL_MARKER', '')
        folder = os.environ.get('TINY_STALL_WORK_DIR')
        if folder and not runner.work_dir.rstrip('/').endswith(folder):
            return
        rank = os.environ.get('TINY_STALL_RANK')
        if rank is not None:
            from mmengine.dist import get_rank
            if get_rank() != int(rank):
                return
        if runner.iter + 1 == at and not os.path.exists(self.marker):
            open(self.marker, 'w').close()
            time.sleep(600)


@HOOKS.register_module()
class RankReportHook(Hook):
    """Writes rank, world size and the final weights of each process."""

    def after_run(self, runner):
        from mmengine.dist import get_dist_info
        rank, world = get_dist_info()
        model = getattr(runner.model, 'module', runner.model)
        weights = [round(float(v), 6) for v in model.fc.weight.flatten()]
        with open(os.path.join(runner.work_dir, f'rank_{rank}.txt'), 'w') as f:
            f.write(f'{world} {weights}')


@HOOKS.register_module()
class StallInSaveHook(Hook):
    """Stalls in the middle of writing the checkpoint of iteration
    $TINY_STALL_SAVE_AT: the first binary file write after
    ``before_save_checkpoint`` writes half its bytes, flushes them, writes
    $TINY_STALL_MARKER and sleeps, so that a test can kill the process with
    a truncated checkpoint on disk. Both ``open`` and ``os.fdopen`` are
    covered, whichever way the checkpoint is written. Does nothing when the
    variables are unset."""

    def before_save_checkpoint(self, runner, checkpoint):
        at = int(os.environ.get('TINY_STALL_SAVE_AT', 0))
        if at and checkpoint['meta']['iter'] == at:
            _arm_stalling_writes(os.environ['TINY_STALL_MARKER'])


def _arm_stalling_writes(marker):
    import builtins

    class HalfWriter:

        def __init__(self, f):
            self._f = f

        def write(self, data):
            self._f.write(bytes(data)[:len(data) // 2])
            self._f.flush()
            os.fsync(self._f.fileno())
            open_(marker, 'w').close()
            time.sleep(600)

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

    open_, fdopen_ = builtins.open, os.fdopen

    def stalling(opener):

        def wrapped(file, mode='r', *args, **kwargs):
            f = opener(file, mode, *args, **kwargs)
            if 'b' in mode and 'w' in mode:
                builtins.open, os.fdopen = open_, fdopen_
                return HalfWriter(f)
            return f

        return wrapped

    builtins.open, os.fdopen = stalling(open_), stalling(fdopen_)
