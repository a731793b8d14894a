"""Checks of annotations and their images made when a dataset is built,
shared by :class:`CheckedVOCDataset` and :class:`CheckedCocoDataset`.

An image: the file exists, its header is readable and gives the size its
annotation states, it carries no EXIF rotation that the loader would apply
under unrotated boxes, and the pipeline's keep-ratio resizes leave it at
least a pixel on its short side (a 5000x1 image would otherwise fail in
OpenCV's resize when first loaded, mid-training). A box: inside its image
and not empty, or clipped to it.
"""
import functools
import os.path as osp
from typing import Iterable, List, Optional, Sequence, Tuple

from PIL import Image, UnidentifiedImageError

EXIF_ORIENTATION = 0x0112


def keep_ratio_scales(pipeline) -> List[Tuple[int, int]]:
    """The target scales of the keep-ratio resizes in a built pipeline
    (``Compose``): ``Resize(keep_ratio=True)``'s ``scale``, each of
    ``RandomChoiceResize``'s ``scales`` and the ends of ``RandomResize``'s
    range, looked for in wrapped transforms too."""
    found = []

    def visit(t):
        for inner in getattr(t, 'transforms', None) or []:
            visit(inner)
        keep = getattr(t, 'keep_ratio', None)
        if keep is None:  # the random resizes keep it in their resize_cfg
            keep = (getattr(t, 'resize_cfg', None) or {}).get('keep_ratio')
        if not keep:
            return
        scale = getattr(t, 'scale', None)
        scales = list(getattr(t, 'scales', None) or [])
        ratio_range = getattr(t, 'ratio_range', None)
        if scale is not None:
            if (isinstance(scale, (tuple, list)) and len(scale) == 2
                    and all(isinstance(s, (tuple, list)) for s in scale)):
                scales += list(scale)  # RandomResize's (low, high) range
            elif ratio_range and isinstance(scale, (tuple, list)):
                scales.append(tuple(v * min(ratio_range) for v in scale))
            else:
                scales.append(scale)
        for s in scales:
            if isinstance(s, (int, float)):
                s = (s, s)
            if isinstance(s, (tuple, list)) and len(s) == 2 and min(s) > 0:
                found.append((int(s[0]), int(s[1])))

    visit(pipeline)
    return found


def loads_ignoring_orientation(pipeline) -> bool:
    """Whether the pipeline's image loader keeps the stored pixels (mmcv's
    ``color_type='color_ignore_orientation'`` or ``'grayscale_ignore_...'``)
    instead of applying an EXIF rotation."""
    for t in getattr(pipeline, 'transforms', None) or []:
        if 'ignore_orientation' in str(getattr(t, 'color_type', '')):
            return True
    return False


def resized_short_side(size: Tuple[int, int],
                       scale: Tuple[int, int]) -> int:
    """The short side of a ``size`` (w, h) image after mmcv's keep-ratio
    rescale to ``scale`` (long edge at most max(scale), short edge at most
    min(scale)), rounded as mmcv rounds it."""
    w, h = size
    factor = min(max(scale) / max(w, h), min(scale) / min(w, h))
    return min(int(w * factor + 0.5), int(h * factor + 0.5))


def check_image_file(path: str,
                     stated_size: Sequence[int],
                     named_by: str,
                     scales: Iterable[Tuple[int, int]] = (),
                     ignore_orientation: bool = False,
                     size_keys: str = 'width x height') -> None:
    """Refuse, naming the image and the annotation that names it
    (``named_by``), an image that is missing, unreadable, of another size
    than ``stated_size`` (w, h), rotated by an EXIF orientation tag (unless
    the pipeline loads it with ``ignore_orientation``), or that one of
    ``scales`` would resize to nothing. ``size_keys`` says where the
    annotation states the size.

    Raises:
        FileNotFoundError: the image is missing.
        ValueError: any of the others.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path} (named by '
                                f'{named_by})')
    try:
        with Image.open(path) as img:
            size = img.size
            orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f'image {path} (named by {named_by}) cannot be '
                         f'read: {e}') from None
    stated = (int(stated_size[0]), int(stated_size[1]))
    if tuple(size) != stated:
        raise ValueError(
            f'image {path} is {size[0]}x{size[1]} but {named_by} states '
            f'{stated[0]}x{stated[1]} ({size_keys})')
    if orientation not in (1, None) and not ignore_orientation:
        raise ValueError(
            f'image {path} (named by {named_by}) has EXIF orientation '
            f'{orientation}: the loader rotates it for display, but its '
            f'{size[0]}x{size[1]} size and its boxes are those of the stored '
            'pixels, so the boxes would land on the wrong places. Store the '
            'image with the rotation applied (and its boxes in that frame), '
            'or load the stored pixels as they are: '
            "LoadImageFromFile(color_type='color_ignore_orientation') in "
            'the pipeline')
    for scale in scales:
        if resized_short_side(size, scale) < 1:
            raise ValueError(
                f'image {path} (named by {named_by}) is {size[0]}x{size[1]}: '
                f'the pipeline\'s keep-ratio resize to {scale} would leave '
                'it less than one pixel on its short side; leave such '
                'images out of the dataset')


def box_problem(box: Sequence[float], width: int,
                height: int) -> Optional[str]:
    """What is wrong with an (x1, y1, x2, y2) box of a ``width`` x
    ``height`` image: None when it is finite, not empty and inside the
    image; otherwise 'empty' (x2 <= x1 or y2 <= y1, NaN included) or
    'outside' (it leaves the image)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        return 'empty'
    if not (0 <= x1 and x2 <= width and 0 <= y1 and y2 <= height):
        return 'outside'
    return None


def clip_box(box: Sequence[float], width: int,
             height: int) -> Tuple[List[float], bool]:
    """``box`` clipped to the image, and whether anything is left of it."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = min(max(x1, 0), width), min(max(x2, 0), width)
    y1, y2 = min(max(y1, 0), height), min(max(y2, 0), height)
    return [x1, y1, x2, y2], x2 > x1 and y2 > y1


class CheckedDatasetMixin:
    """What the checked datasets share: the pipeline's facts the image
    check needs, found once per dataset rather than per image, and the
    refusal of a dataset that ``filter_cfg`` leaves empty. Put it before
    the mmdet dataset class in the bases."""

    @functools.cached_property
    def resize_scales(self) -> List[Tuple[int, int]]:
        return keep_ratio_scales(self.pipeline)

    @functools.cached_property
    def ignores_orientation(self) -> bool:
        return loads_ignoring_orientation(self.pipeline)

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if not data_list:
            raise ValueError(
                f'no image of {self.ann_file} is left after filter_cfg='
                f'{self.filter_cfg} ({len(self.data_list)} listed; '
                'filter_empty_gt drops images without boxes, min_size those '
                'smaller than it)')
        return data_list
