"""IterSeededTrainLoop: a run stopped and resumed ends with the same
weights as one never stopped, although its model and its data draw random
numbers every iteration; mmengine's IterBasedTrainLoop does not."""
import numpy as np
import torch
import torch.nn as nn
from mmdet.registry import DATASETS, HOOKS, MODELS
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from rfcn_mm.engine.iter_seeded_train_loop import iteration_seed


@MODELS.register_module(force=True)
class _DropoutRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x, y=None, mode='tensor'):
        out = self.fc(self.drop(x)).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - y)**2).mean())
        return out


@DATASETS.register_module(force=True)
class _NoisyDataset(Dataset):
    """Random augmentation from NumPy's global generator, as mmcv's
    transforms draw."""
    metainfo = dict(classes=('a', ))

    def __len__(self):
        return 10

    def __getitem__(self, i):
        x = torch.linspace(-1, 1, 8) * (i + 1) / 10
        x = x + torch.from_numpy(np.random.normal(0, 0.1, 8)).float()
        return dict(x=x, y=x.sum() * 0.3 + 1)


@HOOKS.register_module(force=True)
class _StopAtHook(Hook):

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self.at and runner.iter + 1 == self.at:
            runner.train_loop.stop_training = True


def _runner(work_dir, loop, name, stop_at=0, resume=False):
    return Runner(
        model=dict(type='_DropoutRegressor'),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            batch_size=2,
            num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='_NoisyDataset')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        train_cfg=dict(type=loop, max_iters=8),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[dict(type='_StopAtHook', at=stop_at)],
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=3),
        resume=resume,
        default_scope='mmdet')


def _final_weights(tmp_path, loop, tag):
    straight = _runner(tmp_path / f'{tag}_a', loop, f'{tag}_a')
    straight.train()
    stopped = _runner(tmp_path / f'{tag}_b', loop, f'{tag}_b', stop_at=5)
    stopped.train()
    assert stopped.iter == 5
    resumed = _runner(tmp_path / f'{tag}_b', loop, f'{tag}_b2', resume=True)
    resumed.train()
    assert resumed.iter == 8
    return ([p.detach().clone() for p in straight.model.parameters()],
            [p.detach().clone() for p in resumed.model.parameters()])


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    straight, resumed = _final_weights(tmp_path, 'IterSeededTrainLoop',
                                       'seeded')
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)


def test_mmengines_loop_does_not(tmp_path):
    """The same stop and resume with mmengine's own loop ends elsewhere
    (its generators are not where the uninterrupted run's were)."""
    straight, resumed = _final_weights(tmp_path, 'IterBasedTrainLoop',
                                       'plain')
    assert not all(torch.equal(a, b) for a, b in zip(straight, resumed))


def test_seeds_differ_by_iteration_and_rank():
    seeds = {iteration_seed(0, i, r) for i in range(50) for r in range(4)}
    assert len(seeds) == 200
    assert iteration_seed(7, 3, 1) == iteration_seed(7, 3, 1)
    assert all(0 <= s < 2**32 for s in seeds)
