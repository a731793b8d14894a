"""The reference heads' weight layouts turned into rfcn_mm's.

- ``rfcn_cls``: (C + 1) blocks of k*k score maps, class-major, background
  first; mmdet's box heads put background last, so the first block moves
  to the end.
- ``rfcn_bbox``: class-agnostic regression stored as two classes, (bg, fg)
  x (dx, dy, dw, dh) x k*k; the test code reads the foreground half, which
  is the 4 k*k maps rfcn_mm's agnostic head has.
- ``rpn_cls_score``: a two-way softmax over (bg, fg) with channels 0..A-1
  background and A..2A-1 foreground; ``sigmoid(z_fg - z_bg)`` is its
  foreground probability, so mmdet's sigmoid RPN gets the difference of the
  two halves.
- Caffe's BatchNorm keeps its statistics multiplied by a scale factor
  (its third blob; 0 means no statistics); its Scale layer holds gamma and
  beta.
"""
from typing import Tuple

import numpy as np


def background_last(weight: np.ndarray, bias: np.ndarray,
                    bins: int) -> Tuple[np.ndarray, np.ndarray]:
    """Move the first (background) block of ``bins`` channels to the end."""
    if weight.shape[0] % bins:
        raise ValueError(f'{weight.shape[0]} score maps are not whole blocks '
                         f'of {bins} (k*k)')
    order = np.concatenate([np.arange(bins, weight.shape[0]),
                            np.arange(bins)])
    return weight[order], bias[order]


def agnostic_foreground(weight: np.ndarray, bias: np.ndarray,
                        bins: int) -> Tuple[np.ndarray, np.ndarray]:
    """The foreground half of (bg, fg) x 4 x ``bins`` box maps."""
    if weight.shape[0] != 8 * bins:
        raise ValueError(f'class-agnostic box maps are 2 x 4 x {bins} = '
                         f'{8 * bins} channels, got {weight.shape[0]}')
    return weight[4 * bins:], bias[4 * bins:]


def softmax_to_sigmoid(weight: np.ndarray, bias: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """A two-way softmax classifier (bg channels then fg channels) as one
    sigmoid logit per anchor: fg minus bg."""
    if weight.shape[0] % 2:
        raise ValueError(f'a two-way RPN classifier has 2 x anchors '
                         f'channels, got {weight.shape[0]}')
    a = weight.shape[0] // 2
    return weight[a:] - weight[:a], bias[a:] - bias[:a]


def caffe_batch_norm(mean: np.ndarray, var: np.ndarray,
                     factor: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Caffe's stored statistics divided by its scale factor (a factor of
    0 gives zero statistics, as Caffe computes)."""
    f = float(np.asarray(factor).reshape(-1)[0])
    f = 0.0 if f == 0 else 1.0 / f
    return mean * f, var * f
