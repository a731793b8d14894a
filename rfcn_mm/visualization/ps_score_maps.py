"""Pictures of R-FCN's position-sensitive score maps (the paper's Fig. 3-4).

For one image, one RoI and one class: the k x k score maps of that class
over the whole image with the RoI and each map's own bin outlined, the k x k
pooled bin scores, and the vote they average to.
"""
from typing import Optional, Sequence

import numpy as np
import torch

from rfcn_mm.utils.atomic_io import atomic_output


@torch.no_grad()
def ps_maps_for_roi(model, data: dict, roi: Sequence[float],
                    label: int) -> dict:
    """Run the detector's R-FCN part on one preprocessed image.

    Args:
        model: An :class:`RFCN` (or any detector with a :class:`PSRoIHead`).
        data (dict): Output of ``model.data_preprocessor`` for one image
            (``inputs`` of shape (1, 3, H, W) and ``data_samples``).
        roi (Sequence[float]): (x1, y1, x2, y2) in the network's input
            coordinates.
        label (int): Class index (``num_classes`` is background).

    Returns:
        dict: ``maps`` (k*k, h, w) class maps, ``pooled`` (k, k) bin scores,
        ``vote`` (float), ``score`` (softmax probability of ``label``),
        ``stride`` (int) and ``k`` (int).
    """
    head = model.roi_head
    layer = head.bbox_roi_extractor.roi_layers[0]
    kh, kw = layer.output_size
    stride = int(round(1 / layer.spatial_scale))
    feats = model.extract_feat(data['inputs'])
    rois = feats[0].new_tensor([[0, *roi]])
    # the detector's own forward: the picture shows exactly what it computes
    out = head._bbox_forward(feats, rois)
    maps, pooled = out['score_maps'], out['bbox_feats'][0]
    cls_scores = out['cls_score'][0]
    class_maps = maps[0, label * kh * kw:(label + 1) * kh * kw]
    return dict(
        maps=class_maps.float().cpu(),
        pooled=pooled[label].float().cpu(),
        vote=float(cls_scores[label]),
        score=float(cls_scores.softmax(0)[label]),
        stride=stride,
        k=(kh, kw))


def draw_ps_maps(image: np.ndarray,
                 result: dict,
                 roi: Sequence[float],
                 class_name: str,
                 out_file: str,
                 title: Optional[str] = None) -> str:
    """Draw :func:`ps_maps_for_roi`'s result to ``out_file`` (PNG).

    Args:
        image (np.ndarray): RGB image in the network's input coordinates.
        result (dict): From :func:`ps_maps_for_roi`.
        roi (Sequence[float]): (x1, y1, x2, y2), input coordinates.
        class_name (str): For the titles.
        out_file (str): PNG path.
        title (str, optional): Figure title.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    kh, kw = result['k']
    maps = result['maps'].numpy()
    pooled = result['pooled'].numpy()
    s = result['stride']
    x1, y1, x2, y2 = [float(v) / s for v in roi]
    bw, bh = (x2 - x1) / kw, (y2 - y1) / kh
    vmin, vmax = float(maps.min()), float(maps.max())
    fig = plt.figure(figsize=(3 * (kw + 2), 3 * kh), dpi=60)
    grid = fig.add_gridspec(kh, kw + 2)
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(image)
    ax.add_patch(
        patches.Rectangle((roi[0], roi[1]), roi[2] - roi[0], roi[3] - roi[1],
                          fill=False, color='yellow', lw=2))
    ax.set_title('image and RoI')
    ax.axis('off')
    for i in range(kh):
        for j in range(kw):
            ax = fig.add_subplot(grid[i, j + 1])
            ax.imshow(maps[i * kw + j], cmap='viridis', vmin=vmin, vmax=vmax)
            ax.add_patch(
                patches.Rectangle((x1 - .5, y1 - .5), x2 - x1, y2 - y1,
                                  fill=False, color='white', lw=1))
            ax.add_patch(
                patches.Rectangle((x1 + j * bw - .5, y1 + i * bh - .5), bw,
                                  bh, fill=False, color='red', lw=2))
            ax.set_title(f'map ({i},{j})', fontsize=9)
            ax.axis('off')
    ax = fig.add_subplot(grid[:, kw + 1])
    ax.imshow(pooled, cmap='viridis', vmin=vmin, vmax=vmax)
    for i in range(kh):
        for j in range(kw):
            ax.text(j, i, f'{pooled[i, j]:.1f}',
                    ha='center', va='center', color='white', fontsize=8)
    ax.set_title(f'pooled bins\nvote {result["vote"]:.2f}, '
                 f'p({class_name}) = {result["score"]:.2f}')
    ax.axis('off')
    fig.suptitle(title or f'position-sensitive score maps of "{class_name}"')
    with atomic_output(out_file) as tmp:
        fig.savefig(tmp, bbox_inches='tight')
    plt.close(fig)
    return out_file
