"""CheckedCocoDataset: a COCO-format file is checked when the dataset is
built; every fault (which mmdet's CocoDataset drops silently or fails on
with a bare KeyError) is named with the file and the entry."""
import copy
import json
import os.path as osp

import pytest
from helpers.log_capture import logged_warnings
from mmdet.registry import DATASETS
from PIL import Image

CLASSES = ('cat', 'dog')


def _coco():
    images = [dict(id=i + 1, file_name=f'{i}.jpg', width=64, height=48)
              for i in range(3)]
    anns = [
        dict(id=10, image_id=1, category_id=1, bbox=[4, 4, 20, 10],
             area=200, iscrowd=0),
        dict(id=11, image_id=1, category_id=2, bbox=[30, 5, 30, 40],
             area=1200, iscrowd=0),
        dict(id=12, image_id=2, category_id=2, bbox=[0, 0, 64, 48],
             area=3072, iscrowd=0),
        dict(id=13, image_id=3, category_id=1, bbox=[10.5, 8, 5, 5],
             area=25, iscrowd=1),
    ]
    cats = [dict(id=1, name='cat'), dict(id=2, name='dog')]
    return dict(images=images, annotations=anns, categories=cats)


@pytest.fixture
def coco(tmp_path):
    for i in range(3):
        Image.new('RGB', (64, 48), (i * 40, 90, 120)).save(
            tmp_path / f'{i}.jpg')
    return tmp_path


def _build(root, data, type_='CheckedCocoDataset', **kwargs):
    path = root / 'ann.json'
    if isinstance(data, (dict, list)):
        path.write_text(json.dumps(data))
    else:
        path.write_text(data)
    return DATASETS.build(
        dict(type=type_, data_root=str(root) + '/', ann_file='ann.json',
             data_prefix=dict(img=''), metainfo=dict(classes=CLASSES),
             pipeline=[], **kwargs))


@pytest.mark.parametrize(
    'filter_cfg', [None, dict(filter_empty_gt=True, min_size=32)])
def test_a_clean_file_loads_as_cocodataset_loads_it(coco, filter_cfg):
    data = _coco()
    data['images'].append(dict(id=4, file_name='0.jpg', width=64,
                               height=48))  # no box: filtered out
    checked = _build(coco, data, filter_cfg=filter_cfg)
    plain = _build(coco, data, type_='CocoDataset', filter_cfg=filter_cfg)
    assert len(checked) == len(plain) == (3 if filter_cfg else 4)
    for i in range(len(plain)):
        assert checked.get_data_info(i) == plain.get_data_info(i)


def _with(change):
    data = _coco()
    change(data)
    return data


def _set(path, value):
    def change(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


FAULTS = [
    ('not json', '{"images": [', r'corrupt annotation file .*ann.json: '
     r'not JSON'),
    ('a list', [], r'ann.json holds a JSON list, not the COCO object'),
    ('no annotations', _with(lambda d: d.pop('annotations')),
     r'ann.json: "annotations" is missing'),
    ('no images', _with(_set(['images'], [])), r'ann.json lists no image'),
    ('image without file name', _with(lambda d: d['images'][1].pop(
        'file_name')), r'ann.json: images\[1\] \(id 2\) has no "file_name"'),
    ('image width a string', _with(_set(['images', 0, 'width'], '64')),
     r'images\[0\] \(id 1\): "width" must be int, got \'64\''),
    ('repeated image id', _with(_set(['images', 2, 'id'], 1)),
     r'images\[2\] repeats id 1'),
    ('unknown image', _with(_set(['annotations', 1, 'image_id'], 9)),
     r'annotations\[1\] \(id 11\) names image_id 9, which no image has'),
    ('unknown category id', _with(_set(['annotations', 0, 'category_id'],
                                       7)),
     r'annotations\[0\] \(id 10\) names category_id 7, which no category'),
    ('category of no class', _with(lambda d: (
        d['categories'].append(dict(id=3, name='bird')),
        d['annotations'][2].update(category_id=3))),
     r"annotations\[2\] \(id 12\) is of category 'bird' \(id 3\), not a "
     r'class of the dataset'),
    ('class without category', _with(_set(['categories', 1, 'name'],
                                          'wolf')),
     r"ann.json has no category named 'dog', a class of the dataset"),
    ('zero width', _with(_set(['annotations', 0, 'bbox'], [4, 4, 0, 10])),
     r'annotations\[0\] \(id 10\): bbox \[x, y, width, height\] = '
     r'\[4, 4, 0, 10\] is empty its 64x48 image'),
    ('negative width', _with(_set(['annotations', 1, 'bbox'],
                                  [30, 5, -3, 4])),
     r'annotations\[1\] \(id 11\): .* is empty'),
    ('outside', _with(_set(['annotations', 1, 'bbox'], [50, 5, 30, 40])),
     r'annotations\[1\] \(id 11\): bbox .* is outside its 64x48 image '
     r"'0.jpg'"),
    ('nan box', _with(_set(['annotations', 0, 'bbox'],
                           [4, float('nan'), 2, 2])),
     r'annotations\[0\] \(id 10\): bbox must be 4 finite numbers'),
    ('three numbers', _with(_set(['annotations', 0, 'bbox'], [4, 4, 2])),
     r'bbox must be 4 finite numbers'),
    ('sub-pixel box', _with(_set(['annotations', 0, 'bbox'],
                                 [4, 4, 0.5, 10])),
     r'less than a pixel wide or high, which mmdet drops'),
    ('zero area', _with(_set(['annotations', 0, 'area'], 0)),
     r'annotations\[0\] \(id 10\): area is 0, which mmdet drops'),
    ('repeated annotation id', _with(_set(['annotations', 3, 'id'], 10)),
     r'annotations\[3\] \(id 10\) repeats an annotation id'),
]


@pytest.mark.parametrize('data, match', [f[1:] for f in FAULTS],
                         ids=[f[0] for f in FAULTS])
def test_each_fault_is_named_with_the_file_and_the_entry(coco, data, match):
    with pytest.raises(ValueError, match=match):
        _build(coco, copy.deepcopy(data))


def test_what_cocodataset_does_with_such_faults(coco):
    """The oracle of the faults above: mmdet drops them without a word."""
    data = _with(_set(['annotations', 0, 'bbox'], [4, 4, 0, 10]))
    plain = _build(coco, data, type_='CocoDataset')
    assert len(plain.get_data_info(0)['instances']) == 1  # of 2


def test_an_image_whose_file_disagrees_is_named(coco):
    Image.new('RGB', (50, 48)).save(coco / '1.jpg')
    with pytest.raises(ValueError, match=r'1.jpg is 50x48 but .*ann.json '
                       r'\(image id 2\) states 64x48 \("width" x "height"\)'):
        _build(coco, _coco())
    Image.new('RGB', (64, 48)).save(coco / '1.jpg')
    (coco / '2.jpg').unlink()
    with pytest.raises(FileNotFoundError, match=r'image not found: .*2.jpg'):
        _build(coco, _coco(), check_images=True)


def test_clip_and_skip_keep_going_and_count(coco):
    data = _coco()
    data['annotations'][1]['bbox'] = [50, 5, 30, 40]  # clipped to 14 wide
    data['annotations'][0]['bbox'] = [70, 4, 5, 5]  # wholly outside
    data['categories'].append(dict(id=3, name='bird'))
    data['annotations'][2]['category_id'] = 3
    with logged_warnings() as records:
        ds = _build(coco, data, out_of_image='clip', unknown_class='skip')
    first = ds.get_data_info(0)['instances']
    assert [i['bbox'] for i in first] == [[50.0, 5.0, 64.0, 45.0]]
    assert ds.get_data_info(1)['instances'] == []  # a bird: skipped
    assert [r for r in records if 'ann.json: 1 box(es) are empty or wholly '
            'outside their image after clipping' in r]


def test_bad_option_values(coco):
    with pytest.raises(ValueError, match='out_of_image must be'):
        _build(coco, _coco(), out_of_image='drop')
    with pytest.raises(ValueError, match='unknown_class must be'):
        _build(coco, _coco(), unknown_class='ignore')


def test_the_coco_config_uses_it():
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'rfcn',
                                   'rfcn_r101_coco.py'))
    assert cfg.train_dataloader.dataset.type == 'CheckedCocoDataset'
    assert cfg.val_dataloader.dataset.type == 'CheckedCocoDataset'
