"""A small synthetic detection dataset written in the real VOC layout.

Shapes of four classes on cluttered backgrounds, with varied size, aspect
ratio and colour and partial occlusion, so that a detector must localise,
not just classify. mmdet's ``VOCDataset`` reads it as it is::

    root/VOC2007/JPEGImages/000001.jpg
    root/VOC2007/Annotations/000001.xml
    root/VOC2007/ImageSets/Main/{trainval,test}.txt
"""
import math
import os
import os.path as osp
import random
from typing import Sequence, Tuple, Union
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ('rectangle', 'ellipse', 'triangle', 'cross')


def _rand_colour(rng: random.Random, dark: bool = False) -> Tuple[int, ...]:
    lo, hi = (0, 110) if dark else (60, 255)
    return tuple(rng.randint(lo, hi) for _ in range(3))


def _background(rng: random.Random, size: Tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new('RGB', size, _rand_colour(rng, dark=True))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(10, 25)):  # clutter: lines and specks
        x, y = rng.randrange(w), rng.randrange(h)
        if rng.random() < 0.6:
            draw.line([x, y, x + rng.randint(-60, 60), y + rng.randint(-60,
                                                                       60)],
                      fill=_rand_colour(rng),
                      width=rng.randint(1, 3))
        else:
            r = rng.randint(1, 4)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_rand_colour(rng))
    return img.filter(ImageFilter.GaussianBlur(0.6))


def _draw(draw: ImageDraw.ImageDraw, cls: str, box: Sequence[int],
          colour: Tuple[int, ...]) -> None:
    x1, y1, x2, y2 = box
    if cls == 'rectangle':
        draw.rectangle(box, fill=colour)
    elif cls == 'ellipse':
        draw.ellipse(box, fill=colour)
    elif cls == 'triangle':
        draw.polygon([((x1 + x2) / 2, y1), (x2, y2), (x1, y2)], fill=colour)
    else:  # cross: two bars a third of the box thick
        tw, th = (x2 - x1) / 3, (y2 - y1) / 3
        draw.rectangle([x1, y1 + th, x2, y2 - th], fill=colour)
        draw.rectangle([x1 + tw, y1, x2 - tw, y2], fill=colour)


def _random_object(rng: random.Random,
                   size: Tuple[int, int]) -> Tuple[str, Tuple[int, ...]]:
    """A class and a box inside an image of ``size``: side 24 px to half
    the image, aspect ratio within exp(+-0.6)."""
    w, h = size
    cls = rng.choice(CLASSES)
    side = rng.uniform(24, 0.5 * min(w, h))
    aspect = math.exp(rng.uniform(-0.6, 0.6))
    bw = max(12, min(w - 2, round(side * math.sqrt(aspect))))
    bh = max(12, min(h - 2, round(side / math.sqrt(aspect))))
    x1, y1 = rng.randint(0, w - bw), rng.randint(0, h - bh)
    return cls, (x1, y1, x1 + bw, y1 + bh)


def _write_xml(path: str, name: str, size: Tuple[int, int], objects) -> None:
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'VOC2007'
    ET.SubElement(root, 'filename').text = f'{name}.jpg'
    s = ET.SubElement(root, 'size')
    ET.SubElement(s, 'width').text = str(size[0])
    ET.SubElement(s, 'height').text = str(size[1])
    ET.SubElement(s, 'depth').text = '3'
    for cls, (x1, y1, x2, y2) in objects:
        o = ET.SubElement(root, 'object')
        ET.SubElement(o, 'name').text = cls
        ET.SubElement(o, 'pose').text = 'Unspecified'
        ET.SubElement(o, 'truncated').text = '0'
        ET.SubElement(o, 'difficult').text = '0'
        b = ET.SubElement(o, 'bndbox')
        # VOC boxes are 1-based inclusive pixel indices
        for key, v in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                          (x1 + 1, y1 + 1, x2, y2)):
            ET.SubElement(b, key).text = str(int(v))
    ET.ElementTree(root).write(path)


def make_synthetic_voc(root: str,
                       num_train: int = 400,
                       num_test: int = 100,
                       image_size: Tuple[int, int] = (256, 256),
                       max_objects: int = 4,
                       seed: int = 0) -> str:
    """Write the dataset under ``root`` (skipped if it is already there).

    Args:
        root (str): Output folder; ``VOC2007/`` is created inside.
        num_train (int): Images in ``trainval``. Defaults to 400.
        num_test (int): Images in ``test``. Defaults to 100.
        image_size (tuple[int, int]): (width, height). Defaults to
            (256, 256).
        max_objects (int): Objects per image, at least 1. Defaults to 4.
        seed (int): Random seed; the same seed writes the same files.

    Returns:
        str: ``root``.
    """
    voc = osp.join(root, 'VOC2007')
    stamp = osp.join(voc, '.complete')
    wanted = f'{num_train} {num_test} {image_size} {max_objects} {seed}'
    if osp.exists(stamp) and open(stamp).read() == wanted:
        return root
    for sub in ('JPEGImages', 'Annotations', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(voc, sub), exist_ok=True)
    rng = random.Random(seed)
    w, h = image_size
    names = [f'{i:06d}' for i in range(1, num_train + num_test + 1)]
    for name in names:
        img = _background(rng, image_size)
        draw = ImageDraw.Draw(img)
        objects = []
        for _ in range(rng.randint(1, max_objects)):
            cls, box = _random_object(rng, image_size)
            _draw(draw, cls, box, _rand_colour(rng))
            objects.append((cls, box))
        img.save(osp.join(voc, 'JPEGImages', f'{name}.jpg'), quality=92)
        _write_xml(
            osp.join(voc, 'Annotations', f'{name}.xml'), name, image_size,
            objects)
    main = osp.join(voc, 'ImageSets', 'Main')
    with open(osp.join(main, 'trainval.txt'), 'w') as f:
        f.write('\n'.join(names[:num_train]) + '\n')
    with open(osp.join(main, 'test.txt'), 'w') as f:
        f.write('\n'.join(names[num_train:]) + '\n')
    with open(stamp, 'w') as f:
        f.write(wanted)
    return root


def make_synthetic_shapes(num: int,
                          size: int = 128,
                          seed: Union[int, str] = 0
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """The classification counterpart of :func:`make_synthetic_voc`: one
    shape per image on the same cluttered backgrounds, drawn as the
    detection images draw theirs. Pretraining a backbone on it stands in
    for ImageNet pretraining on the synthetic data.

    Args:
        num (int): Number of images.
        size (int): Side of the square images in pixels, at least 52 (the
            smallest shape is 24 px, the largest half the side).
            Defaults to 128.
        seed (int | str): Random seed; the same seed draws the same
            images.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB images, uint8 of shape
        (num, size, size, 3), and their labels, int64 indices into
        ``CLASSES``.
    """
    if num < 0:
        raise ValueError(f'num must be >= 0, got {num}')
    if size < 52:
        raise ValueError(f'size must be at least 52 px (a shape is 24 px '
                         f'to half the image), got {size}')
    rng = random.Random(seed)
    images = np.empty((num, size, size, 3), dtype=np.uint8)
    labels = np.empty(num, dtype=np.int64)
    for i in range(num):
        img = _background(rng, (size, size))
        cls, box = _random_object(rng, (size, size))
        _draw(ImageDraw.Draw(img), cls, box, _rand_colour(rng))
        images[i] = np.asarray(img)
        labels[i] = CLASSES.index(cls)
    return images, labels
