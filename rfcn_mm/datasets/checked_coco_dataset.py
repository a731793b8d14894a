import json
import logging
import math
from numbers import Number
from typing import Any, Dict, List, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.dist import is_main_process
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from .annotation_checks import (CheckedDatasetMixin, box_problem,
                                check_image_file, clip_box)

# lists at least this long show a progress bar while their images are checked
PROGRESS_MIN_IMAGES = 1000


@DATASETS.register_module()
class CheckedCocoDataset(CheckedDatasetMixin, CocoDataset):
    """mmdet's :class:`CocoDataset` that refuses bad annotations by name.

    mmdet's parser drops zero- and negative-size boxes and annotations of
    unknown categories silently, and a structurally broken file fails with
    ``need at least one array to concatenate`` or a bare ``KeyError``. This
    subclass checks the whole file when the dataset is built: its structure
    (``images``, ``annotations``, ``categories``, each entry's keys and
    types, unique ids, references between them), every box, every class of
    the dataset having its category, and each image file (as
    :class:`CheckedVOCDataset` does: it exists, its header gives the
    stated size, no EXIF rotation, not resized to nothing). The first
    problem stops the build with the file and the entry named (index and
    id). Parsing itself is mmdet's.

    Args:
        unknown_class (str): ``'error'`` (default) or ``'skip'`` (mmdet's
            behaviour) for annotations whose category is not one of the
            dataset's classes.
        out_of_image (str): ``'error'`` (default) or ``'clip'`` for boxes
            that leave their image or are empty. Clipped boxes left empty
            are dropped, counted in one warning.
        check_images (bool): Check each image file (local files only).
            Defaults to True.
        **kwargs: :class:`CocoDataset`'s arguments.
    """

    def __init__(self,
                 *args,
                 unknown_class: str = 'error',
                 out_of_image: str = 'error',
                 check_images: bool = True,
                 **kwargs) -> None:
        if unknown_class not in ('error', 'skip'):
            raise ValueError('unknown_class must be "error" or "skip", got '
                             f'{unknown_class!r}')
        if out_of_image not in ('error', 'clip'):
            raise ValueError('out_of_image must be "error" or "clip", got '
                             f'{out_of_image!r}')
        self.unknown_class = unknown_class
        self.out_of_image = out_of_image
        self.check_images = check_images
        self._dropped = 0
        self._progress = None
        super().__init__(*args, **kwargs)

    # reading and the structure of the file

    def load_data_list(self) -> List[dict]:
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as local_path:
            data = self._read(local_path)
        self._check_structure(data)
        coco = self.COCOAPI()
        coco.dataset = data
        coco.createIndex()
        # the aliases mmdet's COCO wrapper sets after its own createIndex
        coco.img_ann_map = coco.imgToAnns
        coco.cat_img_map = coco.catToImgs
        # mmdet's load_data_list reads the file through self.COCOAPI; it is
        # given the object just built from the checked data instead of
        # reading the file a second time
        self.COCOAPI = lambda *_: coco
        self._dropped = 0
        images = len(data['images'])
        if (self.check_images and is_main_process()
                and images >= PROGRESS_MIN_IMAGES):
            print_log(f'checking the {images} images of {self.ann_file}',
                      logger='current')
            self._progress = ProgressBar(images)
        try:
            data_list = super().load_data_list()
        finally:
            del self.COCOAPI
            if self._progress is not None:
                print()
            self._progress = None
        if self._dropped:
            print_log(
                f'{self.ann_file}: {self._dropped} box(es) are empty or '
                'wholly outside their image after clipping '
                '(out_of_image="clip") and are dropped',
                logger='current',
                level=logging.WARNING)
        return data_list

    def _read(self, path: str) -> Dict[str, Any]:
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(
                f'annotation file not found: {self.ann_file}') from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f'corrupt annotation file {self.ann_file}: '
                             f'not JSON ({e})') from None
        if not isinstance(data, dict):
            raise ValueError(
                f'{self.ann_file} holds a JSON {type(data).__name__}, not '
                'the COCO object with "images", "annotations" and '
                '"categories"')
        for key in ('images', 'annotations', 'categories'):
            if not isinstance(data.get(key), list):
                got = ('is missing' if key not in data else
                       f'is a {type(data[key]).__name__}, not a list')
                raise ValueError(f'{self.ann_file}: "{key}" {got}')
        if not data['images']:
            raise ValueError(f'{self.ann_file} lists no image')
        return data

    def _entry(self, key: str, i: int, entry: Any, fields: Dict[str, type]):
        """Check that ``data[key][i]`` is an object with ``fields``."""
        where = f'{self.ann_file}: {key}[{i}]'
        if not isinstance(entry, dict):
            raise ValueError(f'{where} is a {type(entry).__name__}, not an '
                             'object')
        for name, kind in fields.items():
            if name not in entry:
                raise ValueError(f'{where} (id {entry.get("id")!r}) has no '
                                 f'"{name}"')
            value = entry[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(
                    f'{where} (id {entry.get("id")!r}): "{name}" must be '
                    f'{getattr(kind, "__name__", "a number")}, got '
                    f'{value!r}')

    def _check_structure(self, data: Dict[str, Any]) -> None:
        file = self.ann_file
        categories = {}
        for i, cat in enumerate(data['categories']):
            self._entry('categories', i, cat, dict(id=int, name=str))
            if cat['id'] in categories:
                raise ValueError(f'{file}: categories[{i}] repeats id '
                                 f'{cat["id"]}')
            categories[cat['id']] = cat['name']
        names = set(categories.values())
        missing = [c for c in self.metainfo['classes'] if c not in names]
        if missing:
            raise ValueError(
                f'{file} has no category named {missing[0]!r}, a class of '
                f'the dataset (its categories: {sorted(names)}); set '
                'metainfo=dict(classes=...) to the names of the file')
        classes = set(self.metainfo['classes'])
        images = {}
        for i, img in enumerate(data['images']):
            self._entry('images', i, img,
                        dict(id=int, file_name=str, width=int, height=int))
            if img['width'] <= 0 or img['height'] <= 0:
                raise ValueError(
                    f'{file}: images[{i}] (id {img["id"]}) has size '
                    f'{img["width"]}x{img["height"]}')
            if img['id'] in images:
                raise ValueError(f'{file}: images[{i}] repeats id '
                                 f'{img["id"]}')
            images[img['id']] = img
        ann_ids = set()
        for i, ann in enumerate(data['annotations']):
            self._entry('annotations', i, ann,
                        dict(id=int, image_id=int, category_id=int,
                             bbox=list))
            where = f'{file}: annotations[{i}] (id {ann["id"]})'
            if ann['id'] in ann_ids:
                raise ValueError(f'{where} repeats an annotation id')
            ann_ids.add(ann['id'])
            if ann['image_id'] not in images:
                raise ValueError(f'{where} names image_id '
                                 f'{ann["image_id"]}, which no image has')
            cat = ann['category_id']
            if cat not in categories:
                raise ValueError(f'{where} names category_id {cat}, which '
                                 'no category has')
            if categories[cat] not in classes and \
                    self.unknown_class == 'error':
                raise ValueError(
                    f'{where} is of category {categories[cat]!r} (id {cat}),'
                    ' not a class of the dataset '
                    f'{tuple(self.metainfo["classes"])} (set '
                    'unknown_class="skip" to ignore such annotations)')
            box = ann['bbox']
            if len(box) != 4 or not all(
                    isinstance(v, Number) and not isinstance(v, bool)
                    and math.isfinite(v) for v in box):
                raise ValueError(f'{where}: bbox must be 4 finite numbers '
                                 f'[x, y, width, height], got {box!r}')
            if 'area' in ann and not (isinstance(ann['area'], Number)
                                      and math.isfinite(ann['area'])):
                raise ValueError(f'{where}: area must be a finite number, '
                                 f'got {ann["area"]!r}')
            ann.setdefault('area', box[2] * box[3])  # mmdet reads it
            if self.out_of_image == 'error':
                img = images[ann['image_id']]
                x, y, w, h = box
                problem = box_problem((x, y, x + w, y + h), img['width'],
                                      img['height'])
                if problem is None and (w < 1 or h < 1):
                    raise ValueError(
                        f'{where}: bbox [x, y, width, height] = {box} is '
                        'less than a pixel wide or high, which mmdet drops '
                        '(set out_of_image="clip" to drop such boxes)')
                if problem is None and ann['area'] <= 0:
                    raise ValueError(
                        f'{where}: area is {ann["area"]}, which mmdet drops '
                        '(set out_of_image="clip" to drop such boxes)')
                if problem is not None:
                    raise ValueError(
                        f'{where}: bbox [x, y, width, height] = {box} is '
                        f'{"empty" if problem == "empty" else "outside"} '
                        f'its {img["width"]}x{img["height"]} image '
                        f'{img["file_name"]!r} (set out_of_image="clip" to '
                        'clip such boxes)')

    # each image and its boxes

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img = raw_data_info['raw_img_info']
        if self.out_of_image == 'clip':
            anns = []
            for ann in raw_data_info['raw_ann_info']:
                x, y, w, h = ann['bbox']
                box, kept = clip_box((x, y, x + w, y + h), img['width'],
                                     img['height'])
                # what mmdet would drop silently is dropped and counted
                if not kept or box[2] - box[0] < 1 or box[3] - box[1] < 1 \
                        or ann['area'] <= 0:
                    self._dropped += 1
                    continue
                ann = dict(ann, bbox=[box[0], box[1], box[2] - box[0],
                                      box[3] - box[1]])
                ann['area'] = ann['bbox'][2] * ann['bbox'][3]
                anns.append(ann)
            raw_data_info = dict(raw_data_info, raw_ann_info=anns)
        data_info = super().parse_data_info(raw_data_info)
        if self.check_images and self.backend_args is None:
            check_image_file(
                data_info['img_path'], (img['width'], img['height']),
                f'{self.ann_file} (image id {img["id"]})',
                self.resize_scales,
                self.ignores_orientation,
                size_keys='"width" x "height"')
        if self._progress is not None:
            self._progress.update()
        return data_info

    def prepare_data(self, idx: int) -> Any:
        try:
            return super().prepare_data(idx)
        except Exception as e:
            info = self.get_data_info(idx)
            raise RuntimeError(
                f'loading {info.get("img_path")} (image id '
                f'{info.get("img_id")} of {self.ann_file}) failed: '
                f'{type(e).__name__}: {e}') from e
