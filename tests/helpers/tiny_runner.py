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

    def forward(self, x, y=None, mode='tensor'):
        out = self.fc(x).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - y)**2).mean())
        return out


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
    known point. Does nothing when the variables are unset."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        at = int(os.environ.get('TINY_STALL_AT', 0))
        self.marker = os.environ.get('TINY_STALL_MARKER', '')
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
        with open(os.path.join(runner.work_dir, f'rank_{rank}.txt'),
                  'w') as f:
            f.write(f'{world} {weights}')
