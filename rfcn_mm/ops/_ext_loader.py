"""Loading of the compiled extension ``rfcn_mm._ext`` and shared checks."""
import math
from typing import Optional

import torch
from torch import Tensor

try:
    from rfcn_mm import _ext as ext_module
except ImportError as e:  # pragma: no cover - depends on the build
    ext_module = None
    _import_error = e
else:
    _import_error = None

# The most samples per bin along each axis that ps_roi_align's
# sampling_ratio and deform_ps_roi_pool's sample_per_part accept (the C++
# checks have the same bound): thousands would make float32 sums lose the
# answer, tens of thousands overflow the kernels' int sample counts.
MAX_SAMPLES = 64


def get_ext(required: bool = True):
    """Return the compiled extension (whose import registers the
    ``torch.ops.rfcn_mm`` operators) or raise a message saying how to build
    it; with ``required=False``, None when it is not built."""
    if ext_module is None and required:
        raise ImportError(
            'rfcn_mm\'s compiled ops (rfcn_mm._ext) are not built: run '
            '`pip install --no-build-isolation -e .` in the rfcn_mm '
            'checkout (with FORCE_CUDA=1 for the CUDA kernels), or '
            '`bash tools/bootstrap.sh test`. Import error: '
            f'{_import_error}')
    return ext_module


def check_rois(rois: Tensor, batch_size: int, op: str) -> None:
    """Raise when a RoI names an image that is not in the batch or has a
    non-finite (NaN or infinite) coordinate.

    Both checks share one reduction, so on CUDA they cost one host
    synchronisation together (the ops' callers can turn them off with
    ``check_batch_idx=False`` where RoIs are valid by construction); they
    are skipped while a CUDA graph is being captured and inside
    torch.compile / torch.export tracing. Without them the
    kernels give 0 for such RoIs instead of reading out of bounds.
    """
    if rois.dim() != 2 or rois.size(1) != 5 or rois.numel() == 0:
        return  # shape errors are reported by the extension
    if rois.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    if torch.compiler.is_compiling():
        return  # a value read on the host: traced programs rely on the
        # kernels, which pool such RoIs to 0
    idx = rois[:, 0]
    bad_idx = (idx < 0) | (idx >= batch_size) | (idx != idx.floor())
    bad_coord = ~torch.isfinite(rois[:, 1:]).all(1)
    if not bool((bad_idx | bad_coord).any()):
        return
    if bool(bad_idx.any()):
        raise ValueError(
            f'{op}: rois[:, 0] holds batch indices that do not exist in an '
            f'input of batch size {batch_size}: {idx[bad_idx][:5].tolist()}')
    rows = bad_coord.nonzero().flatten()
    raise ValueError(
        f'{op}: rois hold non-finite (NaN or infinite) coordinates in '
        f'{rows.numel()} row(s), e.g. row {int(rows[0])}: '
        f'{rois[rows[0]].tolist()}')


def normalize_output_size(output_size, op: Optional[str] = None) -> tuple:
    """``output_size`` as a pair of ints: an int, an integral float (3.0) or
    a pair of them; anything else is a named error."""
    prefix = f'{op}: ' if op else ''
    pair = (tuple(output_size)
            if isinstance(output_size, (tuple, list)) else
            (output_size, output_size))
    if len(pair) != 2:
        raise ValueError(f'{prefix}output_size must be an int or a pair '
                         f'(kh, kw), got {output_size!r}')
    out = []
    for v in pair:
        if isinstance(v, Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                not math.isfinite(v) or v != int(v):
            raise TypeError(f'{prefix}output_size must hold integers, got '
                            f'{output_size!r}')
        out.append(int(v))
    return tuple(out)


_SCALAR_TYPE_NAMES = {
    torch.float32: 'Float',
    torch.float64: 'Double',
    torch.float16: 'Half',
    torch.bfloat16: 'BFloat16',
    torch.int64: 'Long',
    torch.int32: 'Int',
    torch.int16: 'Short',
    torch.int8: 'Char',
    torch.uint8: 'Byte',
    torch.bool: 'Bool',
}


def dtype_name(dtype: torch.dtype) -> str:
    """A dtype as the C++ checks print it (c10's scalar type name)."""
    return _SCALAR_TYPE_NAMES.get(dtype, str(dtype).replace('torch.', ''))


def check_cuda_build(t: Tensor, op: str) -> None:
    """Refuse a CUDA tensor when the extension has no CUDA kernels."""
    if t.is_cuda and not get_ext().with_cuda():
        raise RuntimeError(f'{op}: rfcn_mm was built without CUDA; rebuild '
                           f'with FORCE_CUDA=1 to run on {t.device}')


def check_op_args(input: Tensor,
                  rois: Tensor,
                  output_size: tuple,
                  spatial_scale: float,
                  op: str,
                  sampling_ratio: Optional[int] = None) -> None:
    """The PS RoI ops' argument checks: the functional ops make them before
    entering the extension, the fake kernels (torch.compile, torch.export)
    make them on metadata, and the C++ kernels repeat them with the same
    messages and exception types for callers of ``torch.ops.rfcn_mm``."""
    if not isinstance(input, Tensor) or not isinstance(rois, Tensor):
        raise TypeError(f'{op}: input and rois must be tensors, got '
                        f'{type(input).__name__} and {type(rois).__name__}')
    if input.dim() != 4:
        raise ValueError(f'{op}: input must be a 4-D tensor (N, C, H, W), '
                         f'got {input.dim()}-D with shape '
                         f'{list(input.shape)}')
    if not input.is_floating_point():
        raise TypeError(f'{op}: input must be a floating point tensor, got '
                        f'{dtype_name(input.dtype)}')
    if rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError(f'{op}: rois must be shaped (N, 5) as (batch_index, '
                         f'x1, y1, x2, y2), got shape {list(rois.shape)}')
    if input.device != rois.device:
        raise ValueError(f'{op}: input and rois must be on the same device, '
                         f'got {input.device} and {rois.device}')
    if input.dtype != rois.dtype:
        raise TypeError(f'{op}: input and rois must have the same dtype, got '
                        f'{dtype_name(input.dtype)} and '
                        f'{dtype_name(rois.dtype)}')
    check_scalar_args(output_size, spatial_scale, sampling_ratio, op)
    kh, kw = output_size
    if input.size(1) % (kh * kw):
        raise ValueError(f'{op}: input channels ({input.size(1)}) must be '
                         f'divisible by output_size[0] * output_size[1] '
                         f'({kh * kw})')
    check_cuda_build(input, op)


def check_grad_args(grad_output: Tensor, rois: Tensor, channels: int,
                    output_size: tuple, op: str) -> None:
    """The backward ops' check that ``grad_output`` fits the forward pass
    (the C++ kernels repeat it)."""
    kh, kw = output_size
    g = grad_output
    if not (g.dim() == 4 and g.size(0) == rois.size(0)
            and g.size(1) * kh * kw == channels and g.size(2) == kh
            and g.size(3) == kw):
        raise ValueError(f'{op}: grad_output shape {list(g.shape)} does not '
                         'match the forward pass')


def check_scalar_args(output_size: tuple,
                      spatial_scale: float,
                      sampling_ratio: Optional[int] = None,
                      op: Optional[str] = None) -> None:
    """Check the ops' non-tensor arguments: on every call of a functional op
    (``op`` names it in the message) and once when a module is built."""
    prefix = f'{op}: ' if op else ''
    if min(output_size) <= 0:
        raise ValueError(f'{prefix}output_size must be positive, got '
                         f'({output_size[0]}, {output_size[1]})')
    if not (isinstance(spatial_scale, (int, float))
            and math.isfinite(spatial_scale) and spatial_scale > 0):
        shown = f'{spatial_scale:g}' if isinstance(
            spatial_scale, (int, float)) else repr(spatial_scale)
        raise ValueError(f'{prefix}spatial_scale must be a finite positive '
                         f'number, got {shown}')
    if sampling_ratio is not None and sampling_ratio < 0:
        raise ValueError(f'{prefix}sampling_ratio must be >= 0 (0 = '
                         f'adaptive), got {sampling_ratio}')
    if sampling_ratio is not None and sampling_ratio > MAX_SAMPLES:
        raise ValueError(f'{prefix}sampling_ratio must be at most '
                         f'{MAX_SAMPLES} ({MAX_SAMPLES} x {MAX_SAMPLES} '
                         f'samples per bin), got {sampling_ratio}')


def scalar_arg(value, name: str, kind: type, op: str):
    """``value`` as ``kind`` (int or float), or a TypeError naming the
    argument: the extension's own message would dump whole tensors."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{op}: {name} must be a number, got '
                        f'{type(value).__name__} {value!r}')
    if kind is int:
        if not math.isfinite(value) or value != int(value):
            raise TypeError(f'{op}: {name} must be an integer, got {value!r}')
        return int(value)
    return float(value)
