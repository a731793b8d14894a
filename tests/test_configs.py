"""Every config loads, inherits at most 3 levels deep (4 for variants of
the COCO config, itself a variant of the main one) and builds: its vis
backends, its data loaders on a few images in the layout it reads, and its
model, which takes a training step and validates. Each file is parsed once;
every test gets its own copy."""
import ast
import copy
import functools
import glob
import os.path as osp

import pytest
import torch
from helpers.smaller_images import shrink_resizes
from helpers.tiny_data import IMAGES, write_all, write_voc0712
from mmdet.registry import MODELS, VISUALIZERS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'rfcn', '*.py')))


def _bases(path):
    """Local _base_ files of a config (mmdet:: bases have no bases of
    their own and count as one level)."""
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            return [value] if isinstance(value, str) else list(value)
    return []


def _depth(path):
    bases = _bases(path)
    depths = [
        1 if b.startswith('mmdet::') else _depth(
            osp.normpath(osp.join(osp.dirname(path), b))) for b in bases
    ]
    return 1 + max(depths, default=0)


def test_there_are_configs():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'rfcn_r101_voc0712.py' in names and len(names) >= 10


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_loads(path):
    # mmdet's own configs go as deep (e.g. its ms-3x variants of ms-1x);
    # a released model's config that varies another one's (ResNet-50,
    # deformable layers) goes one level more
    name = osp.basename(path)
    released = ('_pyrfcn_', '_mxnet_')
    bases = ''.join(_bases(path))
    limit = (4 if 'coco' in name else 3) + (
        any(r in name for r in released) and any(r in bases
                                                 for r in released))
    assert _depth(path) <= limit
    cfg = _load(path)
    assert cfg.custom_imports['imports'] == ['rfcn_mm']
    for name in ('train_dataloader', 'val_dataloader', 'test_evaluator',
                 'optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert name in cfg, name


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_visualizer_backends_start(path, tmp_path):
    """The Runner hands the config to every vis backend before training
    starts; each must work with the installed requirements (TensorBoard,
    for one, is not among them)."""
    cfg = _load(path)
    visualizer = VISUALIZERS.build(
        dict(
            cfg.visualizer,
            name=f'test_configs_{osp.basename(path)}',
            save_dir=str(tmp_path)))
    visualizer.add_config(cfg)
    assert (tmp_path / 'vis_data' / 'config.py').is_file()


@functools.lru_cache(maxsize=None)
def _parsed(path):
    return Config.fromfile(path)


def _load(path):
    """A config, with mmdet's registries ready to build from it."""
    cfg = copy.deepcopy(_parsed(path))
    assert cfg.filename == path
    register_all_modules()
    init_default_scope('mmdet')
    return cfg


def _loader(cfg, split):
    """The config's ``split`` data loader as the Runner builds it, loading
    in this process."""
    return Runner.build_dataloader(
        dict(
            cfg[f'{split}_dataloader'],
            num_workers=0,
            persistent_workers=False),
        seed=0)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('workdir')
    write_all(str(root))
    return root


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_dataloaders_build_and_load(path, split, data_dir, monkeypatch):
    """Each data loader builds as the Runner builds it, from files in the
    layout and at the relative path the config names, and yields a batch;
    the evaluation splits yield the boxes written to disk, unresized."""
    monkeypatch.chdir(data_dir)
    cfg = _load(path)
    batch = next(iter(_loader(cfg, split)))
    assert len(batch['inputs']) == len(batch['data_samples']) >= 1
    sample = batch['data_samples'][0]
    assert len(sample.gt_instances) > 0
    if split != 'train' and 'synthetic' not in path:
        (w, h), objects = IMAGES[0]
        assert sample.ori_shape == (h, w)
        assert sample.gt_instances.labels.tolist() == [o[0] for o in objects]
        assert sample.gt_instances.bboxes.tensor.tolist() == [
            list(map(float, o[1:])) for o in objects
        ]


def test_main_config_names_a_corrupt_annotation(tmp_path, monkeypatch):
    """The main config reads VOC with CheckedVOCDataset: a damaged file
    stops the data loader's construction with the file named."""
    voc = tmp_path / 'data' / 'VOCdevkit'
    write_voc0712(str(voc))
    (voc / 'VOC2012' / 'Annotations' /
     '2012_000001.xml').write_text('<annotation><size><width>10</wid')
    monkeypatch.chdir(tmp_path)
    cfg = _load(osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py'))
    with pytest.raises(
            ValueError,
            match='corrupt annotation file .*VOC2012.*'
            '2012_000001.xml'):
        _loader(cfg, 'train')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_one_training_step_and_validation(path, data_dir, monkeypatch):
    """Each config's model, data loaders and optimizer, built as the Runner
    builds them (without ImageNet weights), take one training step on a
    batch from the training loader and then predict boxes for a batch from
    the validation loader, in the original image's coordinates. Images are
    resized to a third of the configs' scales (the full-size main and COCO
    configs run in tests/test_tools/test_main_config.py)."""
    monkeypatch.chdir(data_dir)
    cfg = _load(path)
    for loader in ('train_dataloader', 'val_dataloader'):
        shrink_resizes(cfg[loader])
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    if model_cfg.roi_head.get('shared_head'):
        model_cfg.roi_head.shared_head.init_cfg = None
    model = MODELS.build(model_cfg)
    k = model_cfg.roi_head.bbox_roi_extractor.roi_layer.output_size
    head = model.roi_head.bbox_head
    assert head.roi_feat_size == (k, k)
    assert head.conv_cls.out_channels == k * k * (head.num_classes + 1)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    log_vars = model.train_step(
        next(iter(_loader(cfg, 'train'))), optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    assert log_vars['loss_cls'] > 0 and log_vars['loss_rpn_cls'] > 0
    changed = [
        not torch.equal(b, p) for b, p in zip(before, model.parameters())
    ]
    assert any(changed)
    model.eval()
    batch = next(iter(_loader(cfg, 'val')))
    results = model.val_step(batch)
    for result in results:
        h, w = result.ori_shape
        pred = result.pred_instances
        assert len(pred) <= cfg.model.test_cfg.rcnn.max_per_img
        boxes = pred.bboxes
        # mmdet clips to the resized image, then rescales: float error
        assert (boxes[:, :2] >= 0).all()
        assert (boxes[:, 2:] <= boxes.new_tensor([w, h]) + 1e-3).all()
