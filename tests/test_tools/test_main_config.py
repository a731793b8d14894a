"""The README's commands on the main config and on the COCO config, R-101 as
configured, on a few images in each dataset's layout at the configs'
relative paths: tools/train.py trains and validates, then tools/test.py
reproduces the validation's metric from the checkpoint, dumps predictions
and draws them (VOC), and tests with mmdet's test-time augmentation, its
views at a third of the configured scale (COCO)."""
import os.path as osp

import pytest
from helpers.smaller_images import shrunk
from helpers.tiny_data import IMAGES, write_coco, write_voc0712
from helpers.tool_runs import logged, run_tool, run_tool_here
from mmengine.config import Config
from mmengine.fileio import load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# no ImageNet weights: nothing to fetch
OFFLINE = ('model.backbone.init_cfg=None',
           'model.roi_head.shared_head.init_cfg=None')


def _run(cwd, *args):
    return run_tool(*args, cwd=cwd)


def _voc(root):
    write_voc0712(osp.join(root, 'data', 'VOCdevkit'))


def _coco(root):
    write_coco(osp.join(root, 'data', 'coco'))


def _tta_at_a_third_of_the_scale(config):
    """--cfg-options that run the config's test-time augmentation (every
    scale, both flips) on images a third of the configured size."""
    options = []
    scales = Config.fromfile(config).tta_pipeline[1]['transforms'][0]
    for i, resize in enumerate(scales):
        w, h = shrunk(resize['scale'], 3)
        options.append(f'tta_pipeline.1.transforms.0.{i}.scale=({w},{h})')
    return options


@pytest.mark.slow
@pytest.mark.parametrize('config,write,metric,extra', [
    ('rfcn_r101_voc0712.py', _voc, 'pascal_voc/mAP', ('--eval', 'mAP')),
    ('rfcn_r101_coco.py', _coco, 'coco/bbox_mAP', ('--eval', 'bbox')),
])
def test_train_then_test(config, write, metric, extra, tmp_path):
    write(str(tmp_path))
    config = osp.join(ROOT, 'configs', 'rfcn', config)
    work = tmp_path / 'work_dirs' / 'run'
    out = _run(tmp_path, osp.join(ROOT,
                                  'tools', 'train.py'), config, '--work-dir',
               str(work), '--cfg-options', *OFFLINE, 'train_cfg.max_iters=1',
               'train_cfg.val_interval=1',
               'default_hooks.checkpoint.interval=1')
    checkpoint = work / 'iter_1.pth'
    assert checkpoint.is_file()
    (val_metric, ) = logged(out, metric)
    assert 0 <= val_metric <= 1
    test = [osp.join(ROOT, 'tools', 'test.py'), config, str(checkpoint)]
    if 'voc' in config:
        # the validation's metric again, the raw predictions and the drawn
        # detections of both test images
        out_pkl = tmp_path / 'results.pkl'
        test_out = _run(tmp_path, *test, *extra, '--out', str(out_pkl),
                        '--show-dir', 'vis', '--work-dir',
                        str(tmp_path / 'test'), '--cfg-options', *OFFLINE)
        assert logged(test_out, metric) == [val_metric]
        results = load(str(out_pkl))
        assert len(results) == len(IMAGES)
        for result, ((w, h), _) in zip(results, IMAGES):
            assert tuple(result['ori_shape']) == (h, w)
            boxes = result['pred_instances']['bboxes']
            # mmdet clips to the resized image, then rescales: float error
            assert len(boxes) > 0 and (
                boxes[:, 2:] <= boxes.new_tensor([w, h]) + 1e-3).all()
        drawn = sorted((tmp_path / 'test').glob('*/vis/*.jpg'))
        assert [p.stem for p in drawn] == ['2007_000000', '2007_000001']
    if 'coco' in config:
        # mmdet's test-time augmentation: ten views of each image merged
        tta_out = _run(tmp_path, *test, *extra, '--tta', '--work-dir',
                       str(tmp_path / 'tta'), '--cfg-options', *OFFLINE,
                       *_tta_at_a_third_of_the_scale(config))
        (tta_metric, ) = logged(tta_out, metric)
        assert 0 <= tta_metric <= 1


def test_coco_metric_on_a_voc_config_is_refused(tmp_path):
    config = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py')
    any_file = osp.join(ROOT, 'README.md')  # refused before it is read
    proc = run_tool_here(
        osp.join(ROOT, 'tools', 'test.py'), config, any_file, '--eval', 'bbox',
        '--work-dir', tmp_path, cwd=tmp_path)
    assert proc.returncode != 0
    assert 'this config tests on CheckedVOCDataset with ann_file ' \
        '"VOC2007/ImageSets/Main/test.txt" (use --eval mAP)' in \
        proc.stderr.splitlines()[-1]
