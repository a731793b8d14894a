"""Every config loads, inherits at most 3 levels deep and builds."""
import ast
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS, VISUALIZERS
from mmdet.utils import register_all_modules
from mmengine.config import Config

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
def test_config_loads_and_builds(path):
    assert _depth(path) <= 3
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['rfcn_mm']
    register_all_modules()
    model = MODELS.build(cfg.model)
    k = cfg.model.roi_head.bbox_roi_extractor.roi_layer.output_size
    head = model.roi_head.bbox_head
    assert head.roi_feat_size == (k, k)
    assert head.conv_cls.out_channels == k * k * (head.num_classes + 1)
    for name in ('train_dataloader', 'val_dataloader', 'test_evaluator',
                 'optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert name in cfg, name


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_visualizer_backends_start(path, tmp_path):
    """The Runner hands the config to every vis backend before training
    starts; each must work with the installed requirements (TensorBoard,
    for one, is not among them)."""
    cfg = Config.fromfile(path)
    register_all_modules()
    visualizer = VISUALIZERS.build(
        dict(
            cfg.visualizer,
            name=f'test_configs_{osp.basename(path)}',
            save_dir=str(tmp_path)))
    visualizer.add_config(cfg)
    assert (tmp_path / 'vis_data' / 'config.py').is_file()
