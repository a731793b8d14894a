"""Checks of the pretrained weights a config names, before training."""
import os.path as osp
import urllib.request
from typing import Dict, List

import torch


def _reachable(url: str, timeout: float) -> bool:
    try:
        req = urllib.request.Request(url, method='HEAD')
        with urllib.request.urlopen(req, timeout=timeout):
            return True
    except Exception:
        return False


def _pretrained_nodes(node, path: str = 'model') -> List[tuple]:
    """(config path, module dict) of every ``Pretrained`` init under
    ``node``."""
    found = []
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            found.append((path, node))
        for k, v in node.items():
            found.extend(_pretrained_nodes(v, f'{path}.{k}'))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            found.extend(_pretrained_nodes(v, f'{path}.{i}'))
    return found


def _unfreeze(node) -> None:
    """Undo what frozen pretrained layers assume: frozen stages, BatchNorm
    in eval mode and BatchNorm without gradients."""
    if isinstance(node, dict):
        if node.get('frozen_stages', -1) != -1:
            node['frozen_stages'] = -1
        if node.get('norm_eval'):
            node['norm_eval'] = False
        norm = node.get('norm_cfg')
        if isinstance(norm, dict) and norm.get('requires_grad') is False:
            node['norm_cfg'] = dict(norm, requires_grad=True)
        for v in node.values():
            _unfreeze(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _unfreeze(v)


def check_pretrained(model_cfg: dict,
                     from_scratch: bool = False,
                     timeout: float = 5.) -> int:
    """Make sure every ``Pretrained`` init of a model config can be loaded,
    or train from scratch on explicit request.

    mmdet's configs load ImageNet weights by URL. Offline, mmengine warns
    that it cannot fetch them and trains on from random weights, with the
    stages and BatchNorms that the config freezes (because they are
    pretrained) frozen at random values: a crippled model. This check stops
    before training instead, naming each file that cannot be had and where
    to put it.

    Args:
        model_cfg (dict): The ``model`` section of a config; edited in
            place when ``from_scratch``.
        from_scratch (bool): Drop every ``Pretrained`` init and unfreeze
            what it froze (``frozen_stages=-1``, ``norm_eval=False``,
            BatchNorm with gradients) instead of checking the files.
            Defaults to False.
        timeout (float): Seconds to wait for each URL. Defaults to 5.

    Returns:
        int: How many ``Pretrained`` inits were dropped (0 unless
        ``from_scratch``).

    Raises:
        FileNotFoundError: A named file is neither local, nor in torch's
            hub cache, nor downloadable.
    """
    nodes = _pretrained_nodes(model_cfg)
    if from_scratch:
        for _, node in nodes:
            node['init_cfg'] = None
        _unfreeze(model_cfg)
        return len(nodes)
    cache = osp.join(torch.hub.get_dir(), 'checkpoints')
    verdict: Dict[str, bool] = {}
    missing = []
    for path, node in nodes:
        ckpt = str(node['init_cfg'].get('checkpoint', ''))
        if ckpt not in verdict:
            if ckpt.startswith(('http://', 'https://')):
                verdict[ckpt] = osp.isfile(osp.join(
                    cache, osp.basename(ckpt))) or _reachable(ckpt, timeout)
            elif '://' in ckpt:
                verdict[ckpt] = True  # other backends: mmengine's to judge
            else:
                verdict[ckpt] = osp.isfile(osp.expanduser(ckpt))
        if not verdict[ckpt]:
            missing.append((f'{path}.init_cfg.checkpoint', ckpt))
    if not missing:
        return 0
    lines = []
    for key, ckpt in missing:
        if ckpt.startswith(('http://', 'https://')):
            lines.append(f'  {key} = {ckpt}: not in {cache} and cannot be '
                         'downloaded (offline?); put the file there as '
                         f'{osp.join(cache, osp.basename(ckpt))}')
        else:
            lines.append(f'  {key} = {ckpt}: file not found')
    raise FileNotFoundError(
        'pretrained weights named by the config cannot be loaded:\n' +
        '\n'.join(lines) + '\nTraining without them would start from '
        'random weights with frozen stages and BatchNorms left frozen. '
        'Fetch the files, or pass --from-scratch to train every layer from '
        'random initialisation (this also unfreezes the frozen stages and '
        'BatchNorms).')
