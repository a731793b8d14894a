"""The stage configs of alternating training, built from the main VOC and
COCO configs and the synthetic one: what each stage trains, freezes, starts
from and reads, checked on the configs and on the models mmdet builds."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rfcn_mm.engine.alternating import (VARIANTS, alternating_settings,
                                        dataset_leaves, proposal_dump_config,
                                        proposal_pipeline, stage_train_config)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIGS = osp.join(ROOT, 'configs', 'rfcn')


def _cfg(name='rfcn_r101_alt-4step_voc0712.py'):
    return Config.fromfile(osp.join(CONFIGS, name))


def _stage(name, variant='4-step'):
    return VARIANTS[variant].stage(name)


def _types(pipeline):
    return [t['type'] for t in pipeline]


def test_the_paper_values_are_the_defaults():
    alt = alternating_settings(_cfg())
    assert alt.variant == '4-step'
    assert (alt.rpn.max_iters, alt.rpn.milestones) == (10000, [7500])
    assert (alt.rfcn.max_iters, alt.rfcn.milestones) == (30000, [20000])
    coco = alternating_settings(_cfg('rfcn_r101_alt-4step_coco.py'))
    assert (coco.rpn.max_iters, coco.rfcn.max_iters) == (60000, 120000)


def test_variants_chain_their_stages():
    four = VARIANTS['4-step']
    assert [s.name for s in four.stages] == ['rpn1', 'rfcn1', 'rpn2', 'rfcn2']
    assert four.final == ('rpn2', 'rfcn2')
    assert four.stage('rfcn2').init == ('rfcn1', 'rpn2')
    five = VARIANTS['5-stage']
    assert [s.name for s in five.stages] == [
        'rpn1', 'rfcn1', 'rpn2', 'rfcn2', 'rpn3'
    ]
    assert five.stage('rfcn2').init == ()  # py-R-FCN: from ImageNet again
    assert five.final == ('rpn3', 'rfcn2')
    assert not five.needs_proposals(five.stage('rpn3'))


def test_rpn1_is_mmdets_rpn_on_the_rfcn_backbone():
    cfg = _cfg()
    out = stage_train_config(cfg, _stage('rpn1'), '/w/rpn1', None)
    assert out.model.type == 'RPN'
    assert out.model.backbone == cfg.model.backbone  # ImageNet, conv1+res2
    assert out.model.backbone.frozen_stages == 1
    assert out.model.rpn_head == cfg.model.rpn_head
    assert out.model.train_cfg.rpn == cfg.model.train_cfg.rpn
    assert out.load_from is None
    assert out.train_cfg.type == 'IterSeededTrainLoop'
    assert out.train_cfg.max_iters == 10000
    [step] = [s for s in out.param_scheduler if s.type == 'MultiStepLR']
    assert (step.milestones, step.end) == ([7500], 10000)
    assert out.val_dataloader is None and out.val_cfg is None
    assert out.work_dir == '/w/rpn1'
    assert 'alternating_cfg' not in out


def test_rpn2_starts_its_backbone_from_rfcn1_and_freezes_it():
    out = stage_train_config(_cfg(), _stage('rpn2'), '/w/rpn2',
                             '/w/rfcn1/iter_30000.pth')
    backbone = out.model.backbone
    assert backbone.frozen_stages == backbone.num_stages == 3
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint='/w/rfcn1/iter_30000.pth',
        prefix='backbone.')
    assert out.load_from is None  # the RPN head starts afresh


def test_rfcn_stages_have_no_rpn_and_read_proposals_per_dataset():
    cfg = _cfg()
    files = ['/w/rpn1/p0.pkl', '/w/rpn1/p1.pkl']  # VOC 2007, VOC 2012
    out = stage_train_config(cfg, _stage('rfcn1'), '/w/rfcn1', None, files)
    assert out.model.type == 'RFCN' and out.model.rpn_head is None
    assert set(out.model.train_cfg) == {'rcnn'}
    assert set(out.model.test_cfg) == {'rcnn'}
    assert out.model.roi_head == cfg.model.roi_head
    leaves = dataset_leaves(out.train_dataloader.dataset)
    assert [leaf.proposal_file for leaf in leaves] == files
    for leaf in leaves:
        types = _types(leaf.pipeline)
        assert types == [
            'LoadImageFromFile', 'LoadProposals', 'LoadAnnotations',
            'ProposalBroadcaster', 'PackDetInputs'
        ]
        assert leaf.pipeline[1].num_max_proposals == 300
        assert _types(leaf.pipeline[3].transforms) == [
            'Resize', 'RandomFlip'
        ]
    out = stage_train_config(cfg, _stage('rfcn2'), '/w/rfcn2', '/w/init.pth',
                             files)
    assert out.load_from == '/w/init.pth'
    assert out.model.backbone.frozen_stages == 3
    assert 'init_cfg' not in out.model.backbone
    assert 'init_cfg' not in out.model.roi_head.shared_head
    with pytest.raises(ValueError, match='one proposal file per training'):
        stage_train_config(cfg, _stage('rfcn1'), '/w', None, files[:1])


def test_multi_scale_pipelines_move_the_proposals_too():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='RandomChoiceResize', scales=[(1000, 600), (1000, 800)]),
        dict(type='PhotoMetricDistortion'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    out = proposal_pipeline(pipeline, 300)
    assert _types(out) == [
        'LoadImageFromFile', 'LoadProposals', 'LoadAnnotations',
        'ProposalBroadcaster', 'PhotoMetricDistortion',
        'ProposalBroadcaster', 'PackDetInputs'
    ]
    with pytest.raises(ValueError, match='Mosaic'):
        proposal_pipeline(pipeline[:2] + [dict(type='Mosaic')], 300)
    with pytest.raises(ValueError, match='already has LoadProposals'):
        proposal_pipeline(
            pipeline[:1] + [dict(type='LoadProposals')] + pipeline[1:], 300)


def test_the_dump_covers_every_training_image_in_test_mode():
    cfg = _cfg()
    out = proposal_dump_config(cfg, _stage('rpn1'), '/w/rpn1/proposals',
                               '/w/rpn1/proposals/train_all.pkl')
    assert out.test_evaluator == dict(
        type='DumpProposals', output_dir='/w/rpn1/proposals',
        proposals_file='train_all.pkl')
    assert out.model.type == 'RPN'
    # py-R-FCN's proposals: 6000 before NMS, 300 after
    assert out.model.test_cfg.rpn.nms_pre == 6000
    assert out.model.test_cfg.rpn.max_per_img == 300
    dataset = out.test_dataloader.dataset
    assert dataset.type == 'ConcatDataset'
    train = dataset_leaves(cfg.train_dataloader.dataset)
    assert [d.ann_file for d in dataset.datasets] == [
        d.ann_file for d in train
    ]
    for leaf in dataset.datasets:
        assert leaf.test_mode and 'filter_cfg' not in leaf
        assert 'RandomFlip' not in _types(leaf.pipeline)
    assert out.test_dataloader.sampler.shuffle is False


@pytest.mark.parametrize(
    'change, message',
    [(dict(rpn=dict(max_iters=100, milestones=[100])), 'milestones'),
     (dict(rpn=dict(max_iters=100, lr=1)), "unknown keys \\['lr'\\]"),
     (dict(stages=dict(rpn9=dict(max_iters=1))), 'rpn9'),
     (dict(variant='3-step'), '3-step'),
     (dict(rfcn=dict(milestones=[1])), 'rfcn.max_iters'),
     (dict(rpn=dict(max_iters=100, warmup_iters=101)), 'warmup_iters=101'),
     (dict(rpn=dict(max_iters=100, warmup_iters=-1)), 'warmup_iters=-1')])
def test_bad_settings_are_named(change, message):
    cfg = _cfg()
    for key, value in change.items():
        cfg.alternating_cfg[key] = value
    with pytest.raises((KeyError, ValueError), match=message):
        stage_train_config(cfg, _stage('rpn1'), '/w', None)


def test_a_config_without_alternating_cfg_is_refused():
    cfg = Config.fromfile(osp.join(CONFIGS, 'rfcn_r101_voc0712.py'))
    with pytest.raises(KeyError, match='no alternating_cfg'):
        alternating_settings(cfg)


def test_per_stage_overrides():
    cfg = _cfg()
    cfg.alternating_cfg.stages = dict(
        rpn2=dict(max_iters=40, milestones=[30], checkpoint_interval=10))
    out = stage_train_config(cfg, _stage('rpn2'), '/w', '/w/c.pth')
    assert out.train_cfg.max_iters == 40
    assert out.default_hooks.checkpoint.interval == 10
    out = stage_train_config(cfg, _stage('rpn1'), '/w', None)
    assert out.train_cfg.max_iters == 10000


def _warmups(out):
    return [(s.begin, s.end, s.start_factor) for s in out.param_scheduler
            if s.type == 'LinearLR']


def test_warmup_per_stage():
    cfg = _cfg('rfcn_r18_synthetic-voc.py')  # warm-up 50, as end to end
    [warmup] = [s for s in cfg.param_scheduler if s.type == 'LinearLR']
    cfg.alternating_cfg.rpn = dict(max_iters=30, milestones=[20])
    cfg.alternating_cfg.stages = dict(rpn2=dict(warmup_iters=0),
                                      rfcn1=dict(warmup_iters=10))
    out = stage_train_config(cfg, _stage('rpn1'), '/w', None)
    assert _warmups(out) == [(0, 30, warmup.start_factor)]  # clipped
    out = stage_train_config(cfg, _stage('rpn2'), '/w', '/w/c.pth')
    assert [s.type for s in out.param_scheduler] == ['MultiStepLR']
    out = stage_train_config(cfg, _stage('rfcn1'), '/w', '/w/c.pth',
                             ['/w/p.pkl'])
    assert _warmups(out) == [(0, 10, warmup.start_factor)]
    # the paper's config has none; a stage that asks gets mmdet's usual one
    cfg = _cfg()
    assert _warmups(stage_train_config(cfg, _stage('rpn1'), '/w',
                                       None)) == []
    cfg.alternating_cfg.rpn.warmup_iters = 500
    out = stage_train_config(cfg, _stage('rpn1'), '/w', None)
    assert _warmups(out) == [(0, 500, 0.001)]


def test_built_stage_models_freeze_what_the_stage_says():
    """The synthetic config's models, built by mmdet: the frozen stage's
    backbone has no trainable parameter and stays in eval mode; the RPN
    stage's head and the R-FCN stage's conv5 and head train."""
    init_default_scope('mmdet')
    cfg = _cfg('rfcn_r18_synthetic-voc.py')
    rpn2 = MODELS.build(
        stage_train_config(cfg, _stage('rpn2'), '/w', None).model)
    rpn2.train()
    assert not any(p.requires_grad for p in rpn2.backbone.parameters())
    assert not any(m.training for m in rpn2.backbone.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    assert all(p.requires_grad for p in rpn2.bbox_head.parameters())
    rfcn2 = MODELS.build(
        stage_train_config(cfg, _stage('rfcn2'), '/w', None, ['/p']).model)
    rfcn2.train()
    assert not rfcn2.with_rpn
    assert not any(p.requires_grad for p in rfcn2.backbone.parameters())
    assert all(p.requires_grad for p in rfcn2.roi_head.parameters())
    rpn1 = MODELS.build(
        stage_train_config(cfg, _stage('rpn1'), '/w', None).model)
    assert all(p.requires_grad for p in rpn1.parameters())  # from scratch
