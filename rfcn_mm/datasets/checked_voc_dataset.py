import logging
import os.path as osp
from typing import Any, List, Union
from xml.etree import ElementTree as ET

from mmdet.datasets import VOCDataset
from mmdet.registry import DATASETS
from mmengine.dist import is_main_process
from mmengine.fileio import list_from_file
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from .annotation_checks import (CheckedDatasetMixin, box_problem,
                                check_image_file, clip_box)

# lists at least this long show a progress bar while they are checked
PROGRESS_MIN_IMAGES = 1000


@DATASETS.register_module()
class CheckedVOCDataset(CheckedDatasetMixin, VOCDataset):
    """mmdet's :class:`VOCDataset` that refuses bad annotations by name.

    mmdet's parser stops with a bare XML error for a corrupt file, skips
    objects of unknown classes silently and keeps boxes that leave the
    image. This subclass checks every annotation and image header while the
    dataset is loaded, so a bad file stops the run before training starts,
    with a message that names the file (and the object) at fault; an image
    that fails to decode later (damaged after its header) is named too.
    Parsing itself is mmdet's.

    Args:
        unknown_class (str): ``'error'`` (default) or ``'skip'`` (mmdet's
            behaviour) for objects whose class is not in ``classes``.
        out_of_image (str): ``'error'`` (default) or ``'clip'`` for boxes
            that leave the image or are empty. Clipped boxes left empty
            (inverted, or wholly outside the image) become ignored boxes,
            counted in one warning per list file.
        check_images (bool): Check that each image file exists and has a
            readable header giving the size its annotation states (local
            files only; a progress bar is shown for long lists). Defaults to
            True.
        **kwargs: :class:`VOCDataset`'s arguments.
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
        self._progress = None
        self._ignored: List[str] = []
        super().__init__(*args, **kwargs)
        if tuple(self._metainfo['classes']) != tuple(
                VOCDataset.METAINFO['classes']):
            # VOCMetric prints PASCAL's class names for any dataset whose
            # folder is VOC2007/VOC2012; custom classes are not PASCAL VOC.
            # (The 11-point/area AP mode is set on the metric itself.)
            self._metainfo['dataset_type'] = None

    def load_data_list(self) -> List[dict]:
        img_ids = list_from_file(self.ann_file, backend_args=self.backend_args)
        if not img_ids:
            raise ValueError(f'image list {self.ann_file} is empty: it must '
                             'name one image id per line')
        self._ignored = []
        if is_main_process() and len(img_ids) >= PROGRESS_MIN_IMAGES:
            print_log(f'checking {len(img_ids)} annotations and images '
                      f'listed in {self.ann_file}', logger='current')
            self._progress = ProgressBar(len(img_ids))
        try:
            data_list = super().load_data_list()
        finally:
            if self._progress is not None:
                print()
            self._progress = None
        if self._ignored:
            print_log(
                f'{self.ann_file}: {len(self._ignored)} box(es) in '
                f'{len(set(self._ignored))} annotation file(s) are empty or '
                'wholly outside their image after clipping '
                f'(out_of_image="clip") and are ignored, e.g. in '
                f'{self._ignored[0]}',
                logger='current',
                level=logging.WARNING)
        return data_list

    def prepare_data(self, idx: int) -> Any:
        try:
            return super().prepare_data(idx)
        except Exception as e:
            info = self.get_data_info(idx)
            raise RuntimeError(
                f'loading {info.get("img_path")} (annotation '
                f'{info.get("xml_path")}) failed: {type(e).__name__}: '
                f'{e}') from e

    def parse_data_info(self, img_info: dict) -> Union[dict, List[dict]]:
        data_info = self._parse_checked(img_info)
        if self._progress is not None:
            self._progress.update()
        return data_info

    def _parse_checked(self, img_info: dict) -> Union[dict, List[dict]]:
        xml_path = img_info['xml_path']
        if self.backend_args is None and not osp.isfile(xml_path):
            raise FileNotFoundError(
                f'annotation file not found: {xml_path} (listed in '
                f'{self.ann_file})')
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as e:
            raise ValueError(
                f'corrupt annotation file {xml_path}: {e}') from None
        self._check_objects(root, xml_path)
        try:
            data_info = super().parse_data_info(img_info)
        except (AttributeError, TypeError, ValueError) as e:
            raise ValueError(f'malformed annotation file {xml_path}: a tag '
                             f'is missing or not a number ({e})') from None
        if self.check_images and self.backend_args is None:
            self._check_image(data_info, xml_path)
        self._check_boxes(data_info, xml_path)
        return data_info

    def _check_image(self, data_info: dict, xml_path: str) -> None:
        check_image_file(
            data_info['img_path'], (data_info['width'], data_info['height']),
            xml_path,
            self.resize_scales,
            self.ignores_orientation,
            size_keys='<size> width x height')

    def _check_objects(self, root: ET.Element, xml_path: str) -> None:
        if self.unknown_class == 'skip':
            return
        for i, obj in enumerate(root.findall('object')):
            name = obj.findtext('name')
            if name not in self._metainfo['classes']:
                raise ValueError(
                    f'{xml_path}: object {i} has unknown class name '
                    f'"{name}"; the dataset\'s classes are '
                    f'{tuple(self._metainfo["classes"])} (set '
                    'unknown_class="skip" to ignore such objects)')

    def _check_boxes(self, data_info: dict, xml_path: str) -> None:
        w, h = data_info['width'], data_info['height']
        for i, inst in enumerate(data_info['instances']):
            if box_problem(inst['bbox'], w, h) is None:
                continue
            x1, y1, x2, y2 = inst['bbox']
            if self.out_of_image == 'error':
                raise ValueError(
                    f'{xml_path}: object {i} has box (xmin, ymin, xmax, '
                    f'ymax) = ({x1 + 1}, {y1 + 1}, {x2 + 1}, {y2 + 1}) '
                    f'outside the {w}x{h} image or empty (set '
                    'out_of_image="clip" to clip such boxes)')
            inst['bbox'], kept = clip_box(inst['bbox'], w, h)
            if not kept:
                inst['ignore_flag'] = 1
                self._ignored.append(xml_path)
