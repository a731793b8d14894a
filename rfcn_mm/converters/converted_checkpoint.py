"""Checking converted weights against the config's model and writing them
as an mmdet checkpoint (what both model converters share)."""
import hashlib
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np


class ConversionMismatchError(ValueError):
    """Converted weights that do not fit the config's model."""


def build_model(config: str) -> Tuple[object, object]:
    """The config and the model it describes (no weights loaded)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    return cfg, MODELS.build(cfg.model)


def fit_problems(model, state: dict) -> List[str]:
    """What keeps ``state`` from loading into ``model`` strictly: shapes
    that differ (with the model's), weights it lacks, keys the model does
    not have."""
    from rfcn_mm.compat import checkpoint_fit_problems
    problems = checkpoint_fit_problems(model, state, revise_keys=())
    extra = sorted(set(state) - set(model.state_dict()))
    if extra:
        problems.append('not in the model: ' + ', '.join(extra[:8]) +
                        (f' and {len(extra) - 8} more' if len(extra) > 8
                         else ''))
    return problems


def write_converted(weights: Dict[str, np.ndarray], src: str, dst: str,
                    config: str, converter: str) -> int:
    """Check ``weights`` against ``config``'s model and write them to
    ``dst`` atomically, with a ``meta`` naming the source file (and its
    SHA-256), the converter, the config and the classes.

    Returns:
        int: The number of tensors written.

    Raises:
        ConversionMismatchError: they do not fit, every problem named.
    """
    import torch

    from rfcn_mm.utils import atomic_output
    cfg, model = build_model(config)
    state = {k: torch.from_numpy(np.ascontiguousarray(v))
             for k, v in weights.items()}
    problems = fit_problems(model, state)
    if problems:
        raise ConversionMismatchError(
            f'{src} does not fit {config}:\n  ' + '\n  '.join(problems))
    digest = hashlib.sha256()
    with open(src, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    classes = dataset.get('metainfo', {}).get('classes')
    if classes is None:
        from mmdet.registry import DATASETS
        classes = DATASETS.get(dataset['type']).METAINFO['classes']
    meta = dict(
        converted_from=osp.basename(src),
        source_sha256=digest.hexdigest(),
        converter=converter,
        config=osp.basename(config),
        dataset_meta=dict(classes=tuple(classes)))
    with atomic_output(dst) as tmp:
        torch.save(dict(state_dict=state, meta=meta), tmp)
    return len(state)
