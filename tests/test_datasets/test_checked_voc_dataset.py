"""Bad dataset input stops the run with a message naming the file."""
import os
import os.path as osp

import pytest
from helpers.log_capture import logged_warnings
from helpers.tool_runs import run_tool_here
from mmdet.registry import DATASETS

from rfcn_mm.datasets import SYNTHETIC_CLASSES, make_synthetic_voc

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def voc(tmp_path):
    root = str(tmp_path / 'voc')
    make_synthetic_voc(root, num_train=4, num_test=2, seed=1)
    return root


def _build(root, pipeline=(), **kwargs):
    return DATASETS.build(
        dict(
            type='CheckedVOCDataset',
            data_root=root + '/',
            ann_file='VOC2007/ImageSets/Main/trainval.txt',
            data_prefix=dict(sub_data_root='VOC2007/'),
            metainfo=dict(classes=SYNTHETIC_CLASSES),
            pipeline=list(pipeline),
            **kwargs))


def _xml(root, name='000002'):
    return osp.join(root, 'VOC2007', 'Annotations', f'{name}.xml')


def test_clean_dataset_loads_like_vocdataset(voc):
    ds = _build(voc)
    plain = DATASETS.build(
        dict(
            type='VOCDataset',
            data_root=voc + '/',
            ann_file='VOC2007/ImageSets/Main/trainval.txt',
            data_prefix=dict(sub_data_root='VOC2007/'),
            metainfo=dict(classes=SYNTHETIC_CLASSES),
            pipeline=[]))
    assert len(ds) == len(plain) == 4
    # custom classes in a VOC2007 folder: VOCMetric must print our names
    assert plain.metainfo['dataset_type'] == 'VOC2007'
    assert ds.metainfo['dataset_type'] is None
    for i in range(4):
        a, b = ds.get_data_info(i), plain.get_data_info(i)
        assert a['instances'] == b['instances']


def test_corrupt_annotation_file(voc):
    with open(_xml(voc), 'w') as f:
        f.write('<annotation><object><name>cross</name')
    with pytest.raises(ValueError, match='corrupt annotation file .*'
                       '000002.xml'):
        _build(voc)


def test_missing_annotation_file(voc):
    os.remove(_xml(voc))
    with pytest.raises(FileNotFoundError, match='annotation file not found: '
                       '.*000002.xml'):
        _build(voc)


def test_missing_image(voc):
    os.remove(osp.join(voc, 'VOC2007', 'JPEGImages', '000003.jpg'))
    with pytest.raises(FileNotFoundError, match='image not found: .*'
                       '000003.jpg'):
        _build(voc)


def test_box_outside_the_image(voc):
    text = open(_xml(voc)).read()
    start = text.index('<xmax>') + len('<xmax>')
    end = text.index('</xmax>')
    with open(_xml(voc), 'w') as f:
        f.write(text[:start] + '999' + text[end:])
    with pytest.raises(ValueError, match='000002.xml: object 0 has box .*'
                       'outside the 256x256 image'):
        _build(voc)
    ds = _build(voc, out_of_image='clip')
    boxes = [inst['bbox'] for d in range(len(ds))
             for inst in ds.get_data_info(d)['instances']]
    assert max(b[2] for b in boxes) <= 256


def test_unknown_class_name(voc):
    text = open(_xml(voc)).read()
    name = text.split('<name>')[1].split('</name>')[0]
    with open(_xml(voc), 'w') as f:
        f.write(text.replace(f'<name>{name}</name>', '<name>hexagon</name>',
                             1))
    with pytest.raises(ValueError, match='000002.xml: object 0 has unknown '
                       'class name "hexagon"'):
        _build(voc)
    assert len(_build(voc, unknown_class='skip')) == 4


def test_missing_tag(voc):
    text = open(_xml(voc)).read()
    with open(_xml(voc), 'w') as f:
        f.write(text.replace('<ymin>', '<ymim>').replace('</ymin>',
                                                         '</ymim>'))
    with pytest.raises(ValueError, match='malformed annotation file .*'
                       '000002.xml'):
        _build(voc)


def test_bad_option_values(voc):
    with pytest.raises(ValueError, match='unknown_class'):
        _build(voc, unknown_class='warn')


@pytest.mark.parametrize('key,message', [
    ('model.roi_head.bbox_hed.num_classes=3',
     '"model.roi_head.bbox_hed" is not a key'),
    ('model.roi_head.bbox_head.num_clases=3',
     'did you mean "model.roi_head.bbox_head.num_classes"'),
])
def test_config_key_that_does_not_exist(key, message):
    cfg = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')
    proc = run_tool_here(
        osp.join(ROOT, 'tools', 'train.py'), cfg, '--cfg-options', key,
        cwd=ROOT)
    assert proc.returncode != 0
    assert message in proc.stderr.splitlines()[-1]


def _img(root, name='000003'):
    return osp.join(root, 'VOC2007', 'JPEGImages', f'{name}.jpg')


def test_zero_byte_image_stops_the_build_naming_it(voc):
    open(_img(voc), 'wb').close()
    with pytest.raises(ValueError, match=r'image .*000003.jpg \(named by '
                       r'.*000003.xml\) cannot be read'):
        _build(voc)


def test_image_size_that_disagrees_with_the_annotation(voc):
    from PIL import Image
    Image.new('RGB', (100, 80)).save(_img(voc))
    with pytest.raises(ValueError, match=r'000003.jpg is 100x80 but .*'
                       r'000003.xml states 256x256'):
        _build(voc)


def test_image_that_fails_to_decode_later_is_named_when_loaded(voc):
    """An image that breaks after the start-up check (here: emptied, with
    the check off) fails where it is loaded, naming the file; cv2 alone
    says '!buf.empty()'."""
    ds = _build(
        voc,
        check_images=False,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='mmdet.LoadAnnotations', with_bbox=True)
        ])
    path = _img(voc)
    open(path, 'wb').close()
    idx = [ds.get_data_info(i)['img_path'] for i in range(len(ds))
           ].index(path)
    with pytest.raises(RuntimeError, match=r'loading .*000003.jpg .*failed'):
        ds[idx]
    assert ds[(idx + 1) % len(ds)]['img'].shape == (256, 256, 3)


def test_empty_image_list_is_named(voc):
    open(osp.join(voc, 'VOC2007', 'ImageSets', 'Main', 'trainval.txt'),
         'w').close()
    with pytest.raises(ValueError, match=r'image list .*trainval.txt is '
                       'empty'):
        _build(voc)


def test_no_image_left_after_filtering_is_named(voc):
    with pytest.raises(ValueError, match=r'no image of .*trainval.txt is '
                       r'left after filter_cfg.*\(4 listed'):
        _build(voc, filter_cfg=dict(min_size=1000))


def test_clipped_boxes_left_empty_are_counted_in_one_warning(voc):
    for name in ('000002', '000003'):
        text = open(_xml(voc, name)).read()
        a = text.index('<xmin>') + len('<xmin>')
        b = text.index('</xmax>')
        # xmin 300 / xmax 400: wholly right of the 256-wide image
        text = (text[:a] + '300</xmin>' +
                text[a:b].split('</xmin>', 1)[1].rsplit('<xmax>', 1)[0] +
                '<xmax>400' + text[b:])
        with open(_xml(voc, name), 'w') as f:
            f.write(text)
    with logged_warnings() as records:
        ds = _build(voc, out_of_image='clip')
    ignored = [
        inst for d in range(len(ds))
        for inst in ds.get_data_info(d)['instances'] if inst['ignore_flag']
    ]
    assert len(ignored) == 2
    warned = [r for r in records if 'after clipping' in r]
    assert len(warned) == 1, records
    assert '2 box(es) in 2 annotation file(s)' in warned[0]
    assert 'trainval.txt' in warned[0]


def _rotated_jpeg(path, size=(256, 256), orientation=6):
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new('RGB', size, (90, 120, 150)).save(path, exif=exif)


def test_an_exif_rotated_image_is_refused_naming_both_ways_out(voc):
    """The loader (cv2) applies an EXIF rotation, the annotation's boxes are
    in the stored pixels: the image would load rotated under unrotated
    boxes."""
    _rotated_jpeg(_img(voc))
    with pytest.raises(ValueError, match=r'000003.jpg \(named by .*'
                       r'000003.xml.*\) has EXIF orientation 6') as info:
        _build(voc, pipeline=[dict(type='LoadImageFromFile')])
    assert "color_type='color_ignore_orientation'" in str(info.value)
    assert 'rotation applied' in str(info.value)


def test_an_exif_rotated_image_loads_as_stored_when_the_pipeline_says_so(voc):
    _rotated_jpeg(_img(voc), size=(256, 256))
    ds = _build(
        voc,
        pipeline=[
            dict(
                type='LoadImageFromFile',
                color_type='color_ignore_orientation')
        ])
    assert len(ds) == 4


def _resize_annotation(root, size, name='000003'):
    """Give image ``name`` the (w, h) ``size``, in its file and its XML,
    with one box inside it."""
    from xml.etree import ElementTree as ET

    from PIL import Image
    Image.new('RGB', size).save(_img(root, name))
    tree = ET.parse(_xml(root, name))
    ann = tree.getroot()
    ann.find('size/width').text, ann.find('size/height').text = map(
        str, size)
    for i, obj in enumerate(ann.findall('object')):
        if i:
            ann.remove(obj)
            continue
        box = obj.find('bndbox')
        for tag, value in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                              (1, 1, size[0], size[1])):
            box.find(tag).text = str(value)
    tree.write(_xml(root, name))


def test_an_image_the_resize_would_reduce_to_nothing_is_refused(voc):
    """5000x2 under a keep-ratio resize to (1000, 600) becomes 1000x0,
    which OpenCV refuses when the image is first loaded, mid-training."""
    _resize_annotation(voc, (5000, 2))
    resize = [
        dict(type='LoadImageFromFile'),
        dict(type='mmdet.Resize', scale=(1000, 600), keep_ratio=True)
    ]
    with pytest.raises(ValueError, match=r'000003.jpg \(named by .*\) is '
                       r'5000x2: the pipeline\'s keep-ratio resize to '
                       r'\(1000, 600\) would leave it less than one pixel'):
        _build(voc, pipeline=resize)
    # resized to a fixed size (no keep_ratio), it is a valid if odd image
    ds = _build(voc, pipeline=[dict(type='LoadImageFromFile'),
                               dict(type='mmdet.Resize', scale=(64, 64),
                                    keep_ratio=False)])
    assert len(ds) == 4


def test_keep_ratio_scales_are_found_in_wrapped_and_random_resizes():
    from mmcv.transforms import Compose, RandomChoiceResize, RandomResize
    from mmdet.datasets.transforms import Resize

    from rfcn_mm.datasets.annotation_checks import (keep_ratio_scales,
                                                    resized_short_side)
    pipeline = Compose([
        Resize(scale=(1000, 600), keep_ratio=True),
        RandomChoiceResize(
            scales=[(1333, 480), (1333, 800)], keep_ratio=True),
        RandomResize(scale=[(640, 320), (960, 480)], keep_ratio=True),
        Resize(scale=(50, 50), keep_ratio=False),
    ])
    assert keep_ratio_scales(pipeline) == [(1000, 600), (1333, 480),
                                           (1333, 800), (640, 320),
                                           (960, 480)]
    # mmcv's rescale: factor min(1000 / 5000, 600 / 1) = 0.2
    assert resized_short_side((5000, 1), (1000, 600)) == 0
    assert resized_short_side((5000, 3), (1000, 600)) == 1
    assert resized_short_side((500, 375), (1000, 600)) == 600
