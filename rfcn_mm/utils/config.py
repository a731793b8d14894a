"""Config helpers shared by the command-line tools."""
import difflib
import os.path as osp
from typing import Iterable, List, Optional

from mmengine.config import Config


def _flat_keys(node, prefix: str = '') -> List[str]:
    keys = []
    if isinstance(node, dict):
        for k, v in node.items():
            path = f'{prefix}.{k}' if prefix else str(k)
            keys.append(path)
            keys.extend(_flat_keys(v, path))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            keys.extend(_flat_keys(v, f'{prefix}.{i}'))
    return keys


def check_override_keys(cfg: Config, keys: Iterable[str]) -> None:
    """Raise KeyError for ``--cfg-options`` keys that name nothing.

    A key may add one new leaf to an existing dict (``a.b.new=1`` when
    ``a.b`` exists), as mmengine allows, but a typo in an intermediate key
    would otherwise silently create a new branch that nothing reads.

    Args:
        cfg (Config): The loaded config.
        keys (Iterable[str]): Dotted keys from ``--cfg-options``.
    """
    known = set(_flat_keys(cfg._cfg_dict.to_dict()))
    for key in keys:
        if key in known:
            continue
        parent = key.rsplit('.', 1)[0] if '.' in key else ''
        if parent and parent not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f'; did you mean "{close[0]}"?' if close else ''
            raise KeyError(f'--cfg-options key "{key}" does not exist in the '
                           f'config ("{parent}" is not a key){hint}')
        # a new leaf under an existing dict is allowed, unless it looks like
        # a typo of a key that is already there
        # (leaf names compared: a long shared parent path would make any
        # two siblings look alike)
        siblings = [
            k.rsplit('.', 1)[-1] for k in known
            if (k.rsplit('.', 1)[0] if '.' in k else '') == parent
        ]
        leaf = key.rsplit('.', 1)[-1]
        close = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.8)
        if close:
            near = f'{parent}.{close[0]}' if parent else close[0]
            raise KeyError(f'--cfg-options key "{key}" does not exist in the '
                           f'config; did you mean "{near}"?')


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Load a config as the command-line tools do.

    Checks that the file exists and that every ``--cfg-options`` key names
    something, merges the options, sets the launcher and the work dir
    (``work_dirs/<config name>`` unless given or set by the config).

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Parsed ``--cfg-options``.
        work_dir (str, optional): ``--work-dir``.
        launcher (str): ``--launcher``. Defaults to 'none'.

    Returns:
        Config: The config.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        check_override_keys(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(path))[0]
        cfg.work_dir = osp.join('work_dirs', name)
    return cfg
