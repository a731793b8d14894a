import math
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is NaN or infinite.

    mmdet's ``CheckInvalidLossHook`` looks at the total loss every
    ``interval`` iterations with an ``assert``; this hook looks at every
    loss term of every iteration and raises ``FloatingPointError`` naming
    the iteration and the terms at fault. It runs before the checkpoint
    hook, so the weights of that iteration (already updated from non-finite
    gradients) are never saved: the last checkpoint stays a good one to
    resume from, e.g. with a lower learning rate. The loss terms are already
    reduced to scalars by the model, and mmengine's runtime info hook reads
    them on the host anyway, so the check adds no host synchronisation of
    its own worth counting. In a multi-process run the ranks share one flag
    (an all-reduce of one integer), so that all of them stop together.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
    """

    priority = 'ABOVE_NORMAL'  # before LoggerHook and CheckpointHook

    def __init__(self, interval: int = 1) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'FiniteLossHook: interval must be a positive '
                             f'int, got {interval!r}')
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner,
                                                       self.interval):
            return
        terms = {
            k: v
            for k, v in outputs.items()
            if isinstance(v, torch.Tensor) and v.numel() == 1
        }
        if not terms:
            return
        values = torch.stack(
            [v.detach().float().reshape(()) for v in terms.values()])
        finite = torch.isfinite(values).all()
        if get_world_size() > 1:
            # every rank stops together: a rank that raised alone would
            # leave the others waiting in the next gradient all-reduce
            flag = (~finite).to(torch.int32).reshape(1)
            all_reduce(flag, op='max')
            if bool(flag.item()) and bool(finite):
                raise FloatingPointError(
                    f'non-finite loss at iteration {runner.iter + 1} on '
                    'another rank; training stops on every rank before this '
                    'iteration\'s weights are saved')
        if bool(finite):
            return
        bad = [
            f'{k} = {v}' for k, v in zip(terms, values.tolist())
            if not math.isfinite(v)
        ]
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1}: '
            f'{", ".join(bad)}. Training stops before this iteration\'s '
            'weights are saved; resume from the last checkpoint in '
            f'{runner.work_dir} with a lower learning rate (optim_wrapper.'
            'optimizer.lr), gradient clipping (optim_wrapper.clip_grad) or '
            'after checking the data.')
