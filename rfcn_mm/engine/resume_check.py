"""Resuming only where the config still describes the checkpoint's run.

mmengine's ``Runner.resume`` restores the optimizer and the parameter
schedulers from the checkpoint, so a config changed since then is partly
ignored without a word (a new learning rate, new milestones), partly fails
deep in torch (another optimizer type: ``KeyError: 'step'``), and a
``max_iters`` below the checkpoint's iteration ends the run at once with
exit status 0. :func:`check_resume` compares the checkpoint's own record of
its run (the config mmengine saves in ``meta['cfg']``, its iteration and
epoch, its dataset's classes) with the run about to resume, and refuses
every disagreement by name before anything is loaded.
"""
import pickle
from typing import Any, List, Optional

from mmengine.config import Config


class ResumeMismatchError(ValueError):
    """The checkpoint to resume from does not belong to this config's
    run."""


def _plain(value: Any) -> Any:
    """Config values as plain dicts, lists and scalars, for comparison."""
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _differences(key: str, old: Any, new: Any) -> List[str]:
    """``key: old -> new`` for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for k in sorted(set(old) | set(new), key=str):
            found += _differences(f'{key}.{k}', old.get(k, '(unset)'),
                                  new.get(k, '(unset)'))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(
            new) and any(isinstance(v, (dict, list)) for v in old + new):
        found = []
        for i, (a, b) in enumerate(zip(old, new)):
            found += _differences(f'{key}.{i}', a, b)
        return found
    return [] if old == new else [f'{key}: {old!r} then, {new!r} now']


def resume_problems(saved_cfg: Optional[Config], meta: dict, cfg: Config,
                    classes: Optional[tuple] = None) -> List[str]:
    """Why the checkpoint with ``meta`` (and the config it saved,
    ``saved_cfg``) cannot be resumed by the run configured by ``cfg``
    whose training dataset has ``classes``; empty when it can."""
    problems = []
    train_cfg = cfg.get('train_cfg') or {}
    it, epoch = meta.get('iter', 0), meta.get('epoch', 0)
    if 'max_iters' in train_cfg and it > train_cfg['max_iters']:
        problems.append(
            f'the checkpoint is at iteration {it}, beyond train_cfg.max_iters'
            f' = {train_cfg["max_iters"]}: nothing would be trained (raise '
            'max_iters to continue training)')
    if 'max_epochs' in train_cfg and epoch > train_cfg['max_epochs']:
        problems.append(
            f'the checkpoint is at epoch {epoch}, beyond train_cfg.max_epochs'
            f' = {train_cfg["max_epochs"]}: nothing would be trained')
    saved_classes = (meta.get('dataset_meta') or {}).get('classes')
    if classes is not None and saved_classes is not None and pickle.dumps(
            tuple(saved_classes)) != pickle.dumps(tuple(classes)):
        problems.append(
            f'the checkpoint was trained on the classes '
            f'{tuple(saved_classes)}, the training dataset now has '
            f'{tuple(classes)}')
    if saved_cfg is None:
        return problems
    old_loop = (saved_cfg.get('train_cfg') or {}).get('type')
    if old_loop != train_cfg.get('type'):
        problems.append(f'train_cfg.type: {old_loop!r} then, '
                        f'{train_cfg.get("type")!r} now')
    old_optim = _plain(saved_cfg.get('optim_wrapper') or {})
    new_optim = _plain(cfg.get('optim_wrapper') or {})
    old_type = (old_optim.get('optimizer') or {}).get('type')
    new_type = (new_optim.get('optimizer') or {}).get('type')
    if old_type != new_type:
        problems.append(
            f'optim_wrapper.optimizer.type: {old_type!r} then, {new_type!r} '
            f'now (the state of a {old_type} optimizer cannot be resumed by '
            f'a {new_type} one)')
    else:
        changed = _differences('optim_wrapper.optimizer',
                               old_optim.get('optimizer') or {},
                               new_optim.get('optimizer') or {})
        changed += _differences('optim_wrapper.paramwise_cfg',
                                old_optim.get('paramwise_cfg') or {},
                                new_optim.get('paramwise_cfg') or {})
        changed += _differences('param_scheduler',
                                _plain(saved_cfg.get('param_scheduler')),
                                _plain(cfg.get('param_scheduler')))
        if changed:
            problems.append(
                'the optimizer or its schedule changed since the checkpoint '
                '(' + '; '.join(changed) + '): resuming restores the '
                'checkpoint\'s optimizer and scheduler state, which would '
                'ignore the new values')
    return problems


def read_checkpoint_meta(filename: str) -> Optional[dict]:
    """The ``meta`` of a checkpoint, without reading its tensors (memory
    mapped where torch's zip format allows it); None when it has none."""
    import torch
    try:
        ckpt = torch.load(
            filename, map_location='cpu', weights_only=True, mmap=True)
    except RuntimeError:  # not the zip format: mmap is not possible
        ckpt = torch.load(filename, map_location='cpu', weights_only=True)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get('meta'), dict):
        return None
    return ckpt['meta']


def check_resume(runner, filename: str) -> None:
    """Refuse to resume ``runner`` from ``filename`` when the checkpoint's
    run and the runner's config disagree (see the module docstring).

    Raises:
        ResumeMismatchError: naming the checkpoint and every disagreement,
            with the way out: set the config back, or train anew from the
            checkpoint's weights with ``load_from`` (without ``--resume``).
    """
    ckpt_meta = read_checkpoint_meta(filename)
    if ckpt_meta is None:
        raise ResumeMismatchError(
            f'cannot resume from {filename}: it holds no training state '
            '(no meta with the iteration, no optimizer), only weights; '
            'start a new run from them with load_from=<checkpoint> without '
            '--resume')
    meta = ckpt_meta
    saved_cfg = None
    if isinstance(meta.get('cfg'), str):
        try:
            saved_cfg = Config.fromstring(meta['cfg'], file_format='.py')
        except Exception:  # an unreadable record: the other checks remain
            saved_cfg = None
    classes = None
    try:  # built by now: Runner.train builds its loop before resuming
        dataset = runner.train_dataloader.dataset
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    except AttributeError:
        pass
    problems = resume_problems(saved_cfg, meta, runner.cfg, classes)
    if problems:
        raise ResumeMismatchError(
            f'cannot resume from {filename}:\n  ' + '\n  '.join(problems) +
            '\nSet the config back to the checkpoint\'s values to resume, '
            'or start a new run from its weights: load_from=<checkpoint> '
            'without --resume (resume=False).')
