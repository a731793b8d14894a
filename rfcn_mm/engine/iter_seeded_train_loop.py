"""An iteration-based training loop whose randomness depends only on the
seed and the iteration, so that a resumed run repeats an uninterrupted one.

mmengine's ``IterBasedTrainLoop`` seeds the random generators once, at
start. A run resumed at iteration ``k`` is seeded again at start and then
replays ``k`` batches through the data pipeline to put the sampler back in
place, so its random flips, its RPN and OHEM samples and its dropout come
from other draws than the uninterrupted run's from iteration ``k`` on.
:class:`IterSeededTrainLoop` seeds Python's, NumPy's and torch's global
generators before each iteration's batch is loaded, from the run's seed,
the iteration and the rank: where the kernels are deterministic (the CPU,
a fixed thread count, data loaded in the main process) a run killed and
resumed ends with the same weights as one that was never stopped.

Data loader workers (``num_workers > 0``) draw from generators of their
own, which this loop does not reach: the data order is still restored,
the augmentation draws are not.
"""
import random

import numpy as np
import torch
from mmdet.registry import LOOPS
from mmengine.dist import get_rank
from mmengine.runner import IterBasedTrainLoop


def iteration_seed(seed: int, iteration: int, rank: int = 0) -> int:
    """A 32-bit seed for ``iteration`` of a run seeded with ``seed``."""
    return int(
        np.random.SeedSequence([seed % 2**32, iteration,
                                rank]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (every device's) generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@LOOPS.register_module()
class IterSeededTrainLoop(IterBasedTrainLoop):
    """:class:`mmengine.runner.IterBasedTrainLoop` with the generators
    seeded per iteration (see the module's description). It takes the
    same arguments; the seed is the runner's (``randomness.seed``, or the
    one mmengine drew and recorded in the checkpoint)."""

    def run(self) -> torch.nn.Module:
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            # put the sampler where the interrupted run left it; the draws
            # spent here are replaced by the next iteration's seeding
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        rank = get_rank()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            seed_everything(iteration_seed(self.runner.seed, self._iter,
                                           rank))
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()

        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
