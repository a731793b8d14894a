"""A few images in each on-disk layout that the configs read: PASCAL VOC
(``data/VOCdevkit/VOC2007``, ``VOC2012``), COCO (``data/coco``) and the
demo's synthetic VOC (``data/synthetic_voc``), under one root that stands in
for the working directory."""
import json
import os
import os.path as osp

from mmdet.datasets import CocoDataset, VOCDataset
from PIL import Image

from rfcn_mm.datasets import make_synthetic_voc

VOC_CLASSES = VOCDataset.METAINFO['classes']
COCO_CLASSES = CocoDataset.METAINFO['classes']
# (width, height) and objects (class index, x1, y1, x2, y2) of each image
IMAGES = [
    ((200, 150), [(14, 20, 30, 120, 140), (6, 130, 10, 195, 70)]),
    ((180, 240), [(11, 10, 40, 170, 230)]),
]


def _save_image(path, size, seed):
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.new('RGB', size, (40 * seed % 256, 90, 160))
    img.save(path, quality=90)


def write_voc(root, year, splits=('trainval', 'test')):
    """``root/VOC{year}/``: both images in every split of ``splits``.
    VOC corners are 1-based; mmdet subtracts 1 from each, so it reads back
    the boxes of ``IMAGES``."""
    voc = osp.join(root, f'VOC{year}')
    os.makedirs(osp.join(voc, 'Annotations'), exist_ok=True)
    os.makedirs(osp.join(voc, 'ImageSets', 'Main'), exist_ok=True)
    names = []
    for i, ((w, h), objects) in enumerate(IMAGES):
        name = f'{year}_{i:06d}'
        names.append(name)
        _save_image(osp.join(voc, 'JPEGImages', f'{name}.jpg'), (w, h), i)
        objs = ''.join(
            f'<object><name>{VOC_CLASSES[c]}</name><difficult>0</difficult>'
            f'<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>'
            f'<xmax>{x2 + 1}</xmax><ymax>{y2 + 1}</ymax></bndbox></object>'
            for c, x1, y1, x2, y2 in objects)
        with open(osp.join(voc, 'Annotations', f'{name}.xml'), 'w') as f:
            f.write(f'<annotation><filename>{name}.jpg</filename><size>'
                    f'<width>{w}</width><height>{h}</height><depth>3</depth>'
                    f'</size>{objs}</annotation>')
    for split in splits:
        with open(osp.join(voc, 'ImageSets', 'Main', f'{split}.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')


def write_voc0712(devkit):
    """VOC2007 trainval and test, VOC2012 trainval under ``devkit``: what
    the 07+12 configs read."""
    write_voc(devkit, 2007)
    write_voc(devkit, 2012, splits=('trainval', ))


def write_coco(root, splits=('train2017', 'val2017')):
    """``root/annotations/instances_{split}.json`` and ``root/{split}/``."""
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split in splits:
        images, annotations = [], []
        for i, ((w, h), objects) in enumerate(IMAGES):
            name = f'{i:012d}.jpg'
            _save_image(osp.join(root, split, name), (w, h), i)
            images.append(dict(id=i + 1, file_name=name, width=w, height=h))
            for c, x1, y1, x2, y2 in objects:
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=i + 1,
                        category_id=c + 1,
                        bbox=[x1, y1, x2 - x1, y2 - y1],
                        area=(x2 - x1) * (y2 - y1),
                        iscrowd=0))
        categories = [
            dict(id=c + 1, name=n) for c, n in enumerate(COCO_CLASSES)
        ]
        with open(
                osp.join(root, 'annotations', f'instances_{split}.json'),
                'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=categories), f)


def write_all(root):
    """Every layout under ``root/data``."""
    data = osp.join(root, 'data')
    write_voc0712(osp.join(data, 'VOCdevkit'))
    write_coco(osp.join(data, 'coco'))
    make_synthetic_voc(
        osp.join(data, 'synthetic_voc'), num_train=2, num_test=2)
