"""The one place where :mod:`rfcn_mm.fast` touches mmengine's
``OptimWrapper`` beyond its public methods.

A training step replayed as a CUDA graph runs the backward pass inside the
graph, so ``OptimWrapper.backward`` (which counts the backward passes that
``should_update`` and gradient accumulation go by) is not called. mmengine
asks a wrapper that does its own backward to count it
(``OptimWrapper.backward``'s docstring); these functions do that.
"""
from mmengine.optim import OptimWrapper


def check_no_accumulation(optim_wrapper: OptimWrapper, option: str) -> None:
    """Refuse gradient accumulation, whose loss factor would be frozen into
    a captured graph."""
    counts = getattr(optim_wrapper, '_accumulative_counts', 1)
    if counts != 1:
        raise ValueError(f'{option} does not support '
                         f'optim_wrapper.accumulative_counts > 1 (got '
                         f'{counts}): the loss factor would be frozen into '
                         'the graph')


def step_after_backward(optim_wrapper: OptimWrapper) -> None:
    """What ``OptimWrapper.update_params`` does after the backward pass,
    for a backward pass that ran outside ``OptimWrapper.backward``: count
    it, then step and zero the gradients when an update is due."""
    optim_wrapper._inner_count += 1  # what OptimWrapper.backward counts
    if optim_wrapper.should_update():
        optim_wrapper.step()
        optim_wrapper.zero_grad()
