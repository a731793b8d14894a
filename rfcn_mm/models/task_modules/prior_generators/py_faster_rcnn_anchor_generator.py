import torch
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class PyFasterRCNNAnchorGenerator(AnchorGenerator):
    """The anchors of py-faster-rcnn's ``generate_anchors`` (used by
    py-R-FCN and Deformable-ConvNets), for models trained with them.

    The base box is ``[0, 0, base_size - 1, base_size - 1]`` with corners
    inclusive. For each ratio r its area is kept: the width is
    ``round(sqrt(area / r))`` and the height ``round(width * r)`` (rounded
    half to even, as NumPy rounds), *before* the scales multiply both; the
    anchor is centred on the base box's centre. mmdet's
    :class:`LegacyAnchorGenerator` rounds only at the end, so its anchors
    for ratios other than 1 differ by several pixels (ratio 0.5, scale 8:
    [-84, -40, 99, 55] here, [-83, -37, 98, 52] there). The order is
    ratio-major (all scales of the first ratio first), as mmdet's
    ``scale_major=True``, and the shifts over the map are mmdet's; pair it
    with :class:`PyFasterRCNNBBoxCoder`, whose widths have the same ``+1``.

    Args:
        strides, ratios, scales, base_sizes: As :class:`AnchorGenerator`
            (``scales``, not ``octave_base_scale``).
    """

    def __init__(self, *args, **kwargs) -> None:
        for key in ('center_offset', 'scale_major', 'octave_base_scale',
                    'scales_per_octave', 'centers'):
            if key in kwargs:
                raise ValueError(
                    f'PyFasterRCNNAnchorGenerator: {key} is not an option: '
                    'py-faster-rcnn\'s anchors are fixed by base_size, '
                    'ratios and scales')
        super().__init__(*args, **kwargs)

    def gen_single_level_base_anchors(self,
                                      base_size: float,
                                      scales: Tensor,
                                      ratios: Tensor,
                                      center=None) -> Tensor:
        """The (len(ratios) * len(scales), 4) base anchors of one level."""
        dtype = torch.float64  # NumPy's precision, then rounded
        size = float(base_size)
        ctr = 0.5 * (size - 1)
        area = size * size
        ws = torch.round(torch.sqrt(area / ratios.to(dtype)))
        hs = torch.round(ws * ratios.to(dtype))
        ws = (ws[:, None] * scales.to(dtype)[None, :]).reshape(-1)
        hs = (hs[:, None] * scales.to(dtype)[None, :]).reshape(-1)
        anchors = torch.stack([
            ctr - 0.5 * (ws - 1), ctr - 0.5 * (hs - 1), ctr + 0.5 * (ws - 1),
            ctr + 0.5 * (hs - 1)
        ], -1)
        return anchors.to(torch.float32)
