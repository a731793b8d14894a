from typing import List, Optional, Sequence, Tuple

from mmdet.models.data_preprocessors import BatchFixedSizePad
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class BatchBucketPad(BatchFixedSizePad):
    """Pad each batch to the smallest of a few fixed sizes that holds it.

    A batch augment for ``DetDataPreprocessor(batch_augments=[...])``, as
    mmdet's :class:`BatchFixedSizePad` (whose padding and metainfo update it
    uses) but with a choice of sizes, so that a training set with many image
    shapes gives only a few batch shapes: what CUDA graphs need
    (``train_cfg.cuda_graph``) at a small cost in padding. For VOC resized
    to at most 1000x600, ``sizes=[(608, 1008), (1008, 608)]`` covers every
    batch, landscape and portrait. A batch larger than every size is left as
    it is.

    Args:
        sizes (sequence[tuple[int, int]]): The (h, w) sizes; the smallest
            in area that holds the batch is used.
        **kwargs: :class:`BatchFixedSizePad`'s other arguments
            (``img_pad_value``, ``pad_mask``, ...).
    """

    def __init__(self, sizes: Sequence[Tuple[int, int]], **kwargs) -> None:
        sizes = [tuple(int(v) for v in s) for s in sizes]
        if not sizes or any(len(s) != 2 or min(s) <= 0 for s in sizes):
            raise ValueError('BatchBucketPad: sizes must be a non-empty list '
                             f'of positive (h, w) pairs, got {sizes}')
        self.sizes = sorted(sizes, key=lambda s: (s[0] * s[1], s))
        super().__init__(size=self.sizes[0], **kwargs)

    def forward(
            self,
            inputs: Tensor,
            data_samples: Optional[List] = None
    ) -> Tuple[Tensor, Optional[List]]:
        h, w = inputs.shape[-2:]
        fits = [s for s in self.sizes if s[0] >= h and s[1] >= w]
        if not fits:
            return inputs, data_samples
        self.size = fits[0]
        return super().forward(inputs, data_samples)
