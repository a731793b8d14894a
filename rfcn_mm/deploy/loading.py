"""Building the FastRFCN that an export starts from: the config's model
(RFCN or FastRFCN: the same modules) with a checkpoint that must fit."""
import torch
from mmengine.config import Config

from rfcn_mm.compat import CheckpointMismatchError, checkpoint_fit_problems
from rfcn_mm.utils.checkpoint_file import load_checkpoint_file


def build_fast_detector(cfg: Config, checkpoint: str, device: str = 'cpu'):
    """The config's detector as a :class:`rfcn_mm.fast.FastRFCN` in eval
    mode, with the checkpoint's weights.

    Raises:
        ValueError: the model is neither RFCN nor FastRFCN.
        FileNotFoundError: no checkpoint file.
        CheckpointFileError: the file is not a checkpoint (a text file, an
            ONNX model ...), named.
        CheckpointMismatchError: the checkpoint does not fit the model,
            naming the parameters.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.copy()
    if model_cfg.get('type') not in ('RFCN', 'FastRFCN'):
        raise ValueError('model.type must be RFCN or FastRFCN to export, got '
                         f'{model_cfg.get("type")!r}')
    model_cfg.type = 'FastRFCN'
    model_cfg.train_cfg = None  # inference only
    ckpt = load_checkpoint_file(checkpoint)
    model = MODELS.build(model_cfg)
    state = ckpt.get('state_dict', ckpt)
    problems = checkpoint_fit_problems(model, state)
    if problems:
        raise CheckpointMismatchError(
            f'{checkpoint} does not fit the model of the config:\n  ' +
            '\n  '.join(problems))
    model.load_state_dict(
        {
            k.replace('module.', '', 1) if k.startswith('module.') else k: v
            for k, v in state.items()
        },
        strict=False)
    meta = ckpt.get('meta', {})
    model.dataset_meta = meta.get('dataset_meta', None)
    return model.to(torch.device(device)).eval()
