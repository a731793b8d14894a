"""Loading of the compiled extension ``rfcn_mm._ext`` and shared checks."""
import torch
from torch import Tensor

try:
    from rfcn_mm import _ext as ext_module
except ImportError as e:  # pragma: no cover - depends on the build
    ext_module = None
    _import_error = e
else:
    _import_error = None


def get_ext():
    """Return the compiled extension or raise a message saying how to
    build it."""
    if ext_module is None:
        raise ImportError(
            'rfcn_mm\'s compiled ops (rfcn_mm._ext) are not built: run '
            '`pip install --no-build-isolation -e .` in the rfcn_mm '
            'checkout (with FORCE_CUDA=1 for the CUDA kernels), or '
            '`bash tools/bootstrap.sh test`. Import error: '
            f'{_import_error}')
    return ext_module


def check_batch_indices(rois: Tensor, batch_size: int, op: str) -> None:
    """Raise when a RoI names an image that is not in the batch.

    On CUDA the check costs one host synchronisation (the ops' callers can
    turn it off with ``check_batch_idx=False`` where the indices are valid
    by construction); it is skipped while a CUDA graph is being captured.
    Without it the kernels give 0 for such RoIs instead of reading out of
    bounds.
    """
    if rois.dim() != 2 or rois.size(1) != 5 or rois.numel() == 0:
        return  # shape errors are reported by the extension
    if rois.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    idx = rois[:, 0]
    bad = (idx < 0) | (idx >= batch_size) | (idx != idx.floor())
    if bool(bad.any()):
        raise ValueError(
            f'{op}: rois[:, 0] holds batch indices that do not exist in an '
            f'input of batch size {batch_size}: {idx[bad][:5].tolist()}')


def check_module_args(output_size: tuple, spatial_scale: float) -> None:
    """Validate the arguments shared by the PS RoI op modules eagerly, at
    construction (the functional ops check them in C++)."""
    if min(output_size) <= 0:
        raise ValueError(f'output_size must be positive, got {output_size}')
    if spatial_scale <= 0:
        raise ValueError(
            f'spatial_scale must be positive, got {spatial_scale}')
