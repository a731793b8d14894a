"""The released-model path as a user runs it, on full-size files with
random weights: the converter writes a checkpoint (with its ``meta``) for
the config it picks, ``tools/test.py`` evaluates it with the legacy config
(py-R-FCN's ResNet-101 on VOC with ``--eval mAP``; Deformable-ConvNets'
Deformable R-FCN on COCO with ``--eval bbox``), mmdet's ``DetInferencer``
detects on an image with it, and it loads as ``load_from`` of the standard
config, which trains from it. The configs run as dumped copies whose
images are a sixth of the configured size (the networks are the real
ones)."""
import os.path as osp

import numpy as np
import pytest
import torch
from helpers.caffe_rfcn_net import make_layers
from helpers.caffe_wire import layer
from helpers.deformable_convnets_names import reference_names
from helpers.mxnet_wire import write_params
from helpers.smaller_images import shrink_resizes
from helpers.tiny_data import write_coco, write_voc0712
from helpers.tool_runs import logged, run_tool
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rfcn_mm.converters.reference_layers import conv_key, norm_key, split_layer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs', 'rfcn')
CONVERTERS = osp.join(ROOT, 'tools', 'model_converters')
# no ImageNet weights to fetch for the standard config
OFFLINE = ('model.backbone.init_cfg=None',
           'model.roi_head.shared_head.init_cfg=None')


def _pyrfcn_file(path):
    """resnet101_rfcn_final.caffemodel's layers at their real sizes."""
    layers = make_layers(64, 21, 9, 512, 1024, 7, seed=0,
                         gains={'conv1': 0.01, 'rpn_bbox_pred': 0.1,
                                'rfcn_bbox': 0.1})
    with open(path, 'wb') as f:
        for name, (kind, blobs) in layers.items():
            f.write(layer(name, kind, blobs))


def _rfcn_dcn_coco_file(path, names):
    """rfcn_dcn_coco-0000.params' arrays (``names``) at the sizes of the
    legacy DCN config's model (the RPN classifier and the box maps are
    twice its size in the file: two-way softmax, (bg, fg) box maps)."""
    init_default_scope('mmdet')
    shapes = {
        k: tuple(v.shape)
        for k, v in MODELS.build(
            Config.fromfile(osp.join(CONFIGS,
                                     'rfcn_r101_dcn_mxnet_coco.py')).model)
        .state_dict().items()
    }
    rng = np.random.default_rng(0)
    norms = {'gamma': 'weight', 'beta': 'bias', 'moving_mean':
             'running_mean', 'moving_var': 'running_var'}
    arrays = {}
    for name in names:
        layer_name, param = split_layer(name[4:])
        if param in norms:
            key = f'{norm_key(layer_name)}.{norms[param]}'
        else:
            key = f'{conv_key(layer_name)}.{param}'
        shape = list(shapes[key])
        if layer_name in ('rpn_cls_score', 'rfcn_bbox'):
            shape[0] *= 2
        if param == 'moving_var':
            value = rng.uniform(0.5, 2, shape)
        elif param == 'gamma':
            value = rng.uniform(0.1, 0.3, shape)
        elif param in ('beta', 'moving_mean', 'bias'):
            value = rng.normal(0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            gain = 0.01 if layer_name == 'conv1' else 0.1 if layer_name in (
                'rpn_bbox_pred', 'rfcn_bbox') else 1.0
            value = rng.normal(0, gain / np.sqrt(fan_in), shape)
        arrays[name] = value
    write_params(path, arrays)


def _smaller(config, path):
    """``config`` dumped to ``path`` with its images a sixth of the size."""
    cfg = Config.fromfile(config)
    shrink_resizes(cfg, factor=6)
    cfg.dump(str(path))
    return str(path)


def _detect_with_inferencer(config, checkpoint, image):
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=config, weights=checkpoint,
                               device='cpu', show_progress=False)
    result = inferencer(image, return_datasamples=True)
    return result['predictions'][0].pred_instances


@pytest.mark.slow
def test_pyrfcn_voc_convert_test_infer_finetune(tmp_path):
    write_voc0712(str(tmp_path / 'data' / 'VOCdevkit'))
    src, dst = tmp_path / 'resnet101_rfcn_final.caffemodel', tmp_path / 'r.pth'
    _pyrfcn_file(src)
    out = run_tool(osp.join(CONVERTERS, 'pyrfcn_caffe_to_mmdet.py'),
                   str(src), str(dst), cwd=tmp_path)
    picked = osp.join(CONFIGS, 'rfcn_r101_pyrfcn_voc0712.py')
    assert f'config: {picked}' in out
    assert '110 convolutions, 104 BatchNorms, 104 Scales' in out
    meta = torch.load(dst, map_location='cpu', weights_only=False)['meta']
    assert meta['converted_from'] == 'resnet101_rfcn_final.caffemodel'
    assert meta['config'] == 'rfcn_r101_pyrfcn_voc0712.py'
    assert len(meta['dataset_meta']['classes']) == 20

    config = _smaller(picked, tmp_path / 'pyrfcn.py')
    test = run_tool(osp.join(ROOT, 'tools', 'test.py'), config, str(dst),
                    '--eval', 'mAP', '--work-dir', str(tmp_path / 'test'),
                    cwd=tmp_path)
    (mAP, ) = logged(test, 'pascal_voc/mAP')
    assert 0 <= mAP <= 1

    image = str(tmp_path / 'data' / 'VOCdevkit' / 'VOC2007' / 'JPEGImages' /
                '2007_000000.jpg')
    found = _detect_with_inferencer(config, str(dst), image)
    assert len(found) > 0 and found.bboxes.shape[1] == 4

    # fine-tuning: the standard config (continuous ops, mmdet's coders)
    # starts from the converted weights and trains
    work = tmp_path / 'finetune'
    run_tool(osp.join(ROOT, 'tools', 'train.py'),
             _smaller(osp.join(CONFIGS, 'rfcn_r101_voc0712.py'),
                      tmp_path / 'standard.py'), '--work-dir',
             str(work), '--cfg-options', *OFFLINE, f'load_from={dst}',
             'model.backbone.style=caffe',
             'model.roi_head.shared_head.style=caffe',
             'train_cfg.max_iters=1', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=1', cwd=tmp_path)
    tuned = torch.load(work / 'iter_1.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    start = torch.load(dst, map_location='cpu',
                       weights_only=False)['state_dict']
    assert {k for k in tuned if 'num_batches_tracked' not in k} == set(start)
    key = 'roi_head.bbox_head.conv_cls.weight'
    assert not torch.equal(tuned[key], start[key])  # trained
    frozen = 'backbone.conv1.weight'  # conv1 + res2 frozen in the config
    assert torch.equal(tuned[frozen], start[frozen])


@pytest.mark.slow
def test_deformable_rfcn_coco_convert_test_infer(tmp_path):
    write_coco(str(tmp_path / 'data' / 'coco'))
    src, dst = tmp_path / 'rfcn_dcn_coco-0000.params', tmp_path / 'd.pth'
    _rfcn_dcn_coco_file(src, reference_names(dcn=True))
    out = run_tool(osp.join(CONVERTERS, 'deformable_convnets_to_mmdet.py'),
                   str(src), str(dst), cwd=tmp_path)
    picked = osp.join(CONFIGS, 'rfcn_r101_dcn_mxnet_coco.py')
    assert f'config: {picked}' in out
    assert 'Deformable R-FCN: 5 offset convs' in out
    config = _smaller(picked, tmp_path / 'dcn.py')
    test = run_tool(osp.join(ROOT, 'tools', 'test.py'), config, str(dst),
                    '--eval', 'bbox', '--work-dir', str(tmp_path / 'test'),
                    cwd=tmp_path)
    (ap, ) = logged(test, 'coco/bbox_mAP')
    assert 0 <= ap <= 1
    image = str(tmp_path / 'data' / 'coco' / 'val2017' / '000000000000.jpg')
    found = _detect_with_inferencer(config, str(dst), image)
    assert len(found) > 0
