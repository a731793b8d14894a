import os.path as osp
from typing import List, Union
from xml.etree import ElementTree as ET

from mmdet.datasets import VOCDataset
from mmdet.registry import DATASETS


@DATASETS.register_module()
class CheckedVOCDataset(VOCDataset):
    """mmdet's :class:`VOCDataset` that refuses bad annotations by name.

    mmdet's parser stops with a bare XML error for a corrupt file, skips
    objects of unknown classes silently and keeps boxes that leave the
    image. This subclass checks every annotation while the dataset is
    loaded, so a bad file stops the run before training starts, with a
    message that names the file (and the object) at fault. Parsing itself is
    mmdet's.

    Args:
        unknown_class (str): ``'error'`` (default) or ``'skip'`` (mmdet's
            behaviour) for objects whose class is not in ``classes``.
        out_of_image (str): ``'error'`` (default) or ``'clip'`` for boxes
            that leave the image or are empty.
        check_images (bool): Check that each image file exists (local files
            only). Defaults to True.
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
        super().__init__(*args, **kwargs)
        if tuple(self._metainfo['classes']) != tuple(
                VOCDataset.METAINFO['classes']):
            # VOCMetric prints PASCAL's class names for any dataset whose
            # folder is VOC2007/VOC2012; custom classes are not PASCAL VOC.
            # (The 11-point/area AP mode is set on the metric itself.)
            self._metainfo['dataset_type'] = None

    def parse_data_info(self, img_info: dict) -> Union[dict, List[dict]]:
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
        if self.check_images and self.backend_args is None and \
                not osp.isfile(data_info['img_path']):
            raise FileNotFoundError(
                f'image not found: {data_info["img_path"]} (named by '
                f'{xml_path})')
        self._check_boxes(data_info, xml_path)
        return data_info

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
            x1, y1, x2, y2 = inst['bbox']
            inside = 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            if inside:
                continue
            if self.out_of_image == 'error':
                raise ValueError(
                    f'{xml_path}: object {i} has box (xmin, ymin, xmax, '
                    f'ymax) = ({x1 + 1}, {y1 + 1}, {x2 + 1}, {y2 + 1}) '
                    f'outside the {w}x{h} image or empty (set '
                    'out_of_image="clip" to clip such boxes)')
            x1, x2 = min(max(x1, 0), w), min(max(x2, 0), w)
            y1, y2 = min(max(y1, 0), h), min(max(y2, 0), h)
            inst['bbox'] = [x1, y1, x2, y2]
            if x2 <= x1 or y2 <= y1:
                inst['ignore_flag'] = 1
