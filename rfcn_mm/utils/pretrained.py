"""Offline fallback for ImageNet weights named by URL in configs."""
import os.path as osp
import urllib.request
import warnings
from typing import Dict

import torch


def _reachable(url: str, timeout: float) -> bool:
    try:
        req = urllib.request.Request(url, method='HEAD')
        with urllib.request.urlopen(req, timeout=timeout):
            return True
    except Exception:
        return False


def drop_unavailable_pretrained(model_cfg: dict, timeout: float = 5.) -> int:
    """Remove ``Pretrained`` inits whose URL is neither cached nor reachable.

    mmdet's configs load ImageNet weights by URL; offline, mmengine fails at
    the first of them. This keeps a run going from random initialisation
    and says so loudly. Local checkpoint paths are left alone (a missing
    local file is an error the user should see).

    Args:
        model_cfg (dict): The ``model`` section of a config, edited in place.
        timeout (float): Seconds to wait for each URL. Defaults to 5.

    Returns:
        int: How many inits were dropped.
    """
    cache = osp.join(torch.hub.get_dir(), 'checkpoints')
    verdict: Dict[str, bool] = {}
    dropped = 0

    def visit(node):
        nonlocal dropped
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                url = str(init.get('checkpoint', ''))
                if url.startswith(('http://', 'https://')):
                    if url not in verdict:
                        cached = osp.isfile(
                            osp.join(cache, osp.basename(url)))
                        verdict[url] = cached or _reachable(url, timeout)
                    if not verdict[url]:
                        node['init_cfg'] = None
                        dropped += 1
                        warnings.warn(
                            f'Pretrained weights {url} are not cached in '
                            f'{cache} and cannot be downloaded (offline?): '
                            f'{node.get("type")} starts from random '
                            'initialisation. Put the file there to use it.',
                            stacklevel=2)
            for v in node.values():
                visit(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                visit(v)

    visit(model_cfg)
    return dropped
