"""The stages of alternating training and the config each one runs.

Two variants (the paper's sentence, "the 4-step alternating training [of
Faster R-CNN], alternating between training RPN and training R-FCN", read
two ways by the reference code):

``4-step`` (py-faster-rcnn's ``train_faster_rcnn_alt_opt.py``, applied to
R-FCN by Deformable-ConvNets' ``train_alternate.py``):
  1. ``rpn1``: RPN from the ImageNet weights; proposals of the training set.
  2. ``rfcn1``: R-FCN from the ImageNet weights, on ``rpn1``'s proposals.
  3. ``rpn2``: RPN from ``rfcn1``, the shared layers (conv1 to conv4)
     frozen; proposals again.
  4. ``rfcn2``: R-FCN from ``rfcn1`` and ``rpn2``, the shared layers
     frozen (conv5 and the head learn), on ``rpn2``'s proposals.
  Final model: ``rfcn2`` with ``rpn2``'s RPN head.

``5-stage`` (py-R-FCN's ``train_rfcn_alt_opt_5stage.py``): as above up to
``rpn2``, then ``rfcn2`` starts again from the ImageNet weights (on
``rpn2``'s proposals), and ``rpn3`` refits the RPN head on ``rfcn2``'s
frozen shared layers. Final model: ``rfcn2`` with ``rpn3``'s RPN head.

An RPN stage is mmdet's ``RPN`` detector (its head is the R-FCN config's
``rpn_head``, its backbone the same); an R-FCN stage is the config's model
with ``rpn_head=None``, trained on proposals read by mmdet's
``LoadProposals`` and ``ProposalBroadcaster``: mmdet's two-stage detector
uses its RPN's proposals whenever it has one. Freezing is the backbone's
``frozen_stages`` (``requires_grad=False``, BatchNorm in eval mode), so
mmengine leaves the frozen weights out of the optimizer.

The stage settings come from the config's ``alternating_cfg``::

    alternating_cfg = dict(
        variant='4-step',                        # or '5-stage'
        rpn=dict(max_iters=10000, milestones=[7500]),    # each RPN stage
        rfcn=dict(max_iters=30000, milestones=[20000]),  # each R-FCN stage
        stages=dict(rpn2=dict(max_iters=5000, milestones=[4000])),
        proposals=dict(nms_pre=6000, max_per_img=300))   # RPN when dumping

``rpn``/``rfcn``/``stages.<name>`` may also set ``checkpoint_interval`` and
``warmup_iters`` (the length of the config's ``LinearLR`` warm-up in that
stage, 0 for none; default: the config's, clipped to the stage).
``proposals`` is the RPN's ``test_cfg`` when it writes the proposals
(default: the config's ``train_cfg.rpn_proposal``, the proposals the
end-to-end head learns from) and ``num_max_proposals`` how many of them the
R-FCN stages read per image (default: its ``max_per_img``).
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config, ConfigDict


@dataclass(frozen=True)
class Stage:
    """One stage of a variant.

    Args:
        name (str): Its name, also its work dir's (``rpn1``).
        kind (str): ``'rpn'`` or ``'rfcn'``.
        init (tuple[str]): The stages whose weights it starts from, merged
            (see :func:`~.stage_checkpoints.merge_stage_checkpoints`):
            empty for the config's own (ImageNet) initialisation, one R-FCN
            stage, or an R-FCN and an RPN stage (the RPN's shared layers).
        freeze_shared (bool): Whether conv1 to conv4 are frozen.
        proposals (str, optional): R-FCN stages: the RPN stage whose
            proposals it learns from.
    """
    name: str
    kind: str
    init: Tuple[str, ...] = ()
    freeze_shared: bool = False
    proposals: Optional[str] = None

    def describe(self, initial: str = 'ImageNet') -> str:
        """One line: what trains, from what (``initial`` names the
        config's own initialisation), on what, with what frozen."""
        what = 'RPN' if self.kind == 'rpn' else 'R-FCN'
        start = ' + '.join(self.init) if self.init else initial
        parts = [f'{what} from {start}']
        if self.proposals:
            parts.append(f'on {self.proposals} proposals')
        if self.freeze_shared:
            parts.append('conv1-conv4 frozen')
        return ', '.join(parts)


@dataclass(frozen=True)
class Variant:
    name: str
    stages: Tuple[Stage, ...]
    final: Tuple[str, str]  # (RPN stage, R-FCN stage) merged at the end

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def needs_proposals(self, stage: Stage) -> bool:
        """Whether a later stage learns from ``stage``'s proposals."""
        return any(s.proposals == stage.name for s in self.stages)


VARIANTS: Dict[str, Variant] = {
    '4-step':
    Variant('4-step', (
        Stage('rpn1', 'rpn'),
        Stage('rfcn1', 'rfcn', proposals='rpn1'),
        Stage('rpn2', 'rpn', init=('rfcn1', ), freeze_shared=True),
        Stage('rfcn2', 'rfcn', init=('rfcn1', 'rpn2'), freeze_shared=True,
              proposals='rpn2'),
    ), final=('rpn2', 'rfcn2')),
    '5-stage':
    Variant('5-stage', (
        Stage('rpn1', 'rpn'),
        Stage('rfcn1', 'rfcn', proposals='rpn1'),
        Stage('rpn2', 'rpn', init=('rfcn1', ), freeze_shared=True),
        Stage('rfcn2', 'rfcn', proposals='rpn2'),
        Stage('rpn3', 'rpn', init=('rfcn2', ), freeze_shared=True),
    ), final=('rpn3', 'rfcn2')),
}

# transforms that move boxes: the proposals must move with the image
_BOX_TRANSFORMS = ('Resize', 'RandomResize', 'RandomChoiceResize',
                   'RandomFlip', 'RandomCrop', 'FixShapeResize')
# transforms that move boxes in ways ProposalBroadcaster cannot repeat on
# the proposals (they mix images or keep state between calls)
_UNSUPPORTED = ('Mosaic', 'MixUp', 'CachedMosaic', 'CachedMixUp',
                'CopyPaste', 'RandomAffine', 'Expand', 'MinIoURandomCrop',
                'RandomShift', 'RandomCenterCropPad', 'YOLOXHSVRandomAug')
_STAGE_KEYS = ('max_iters', 'milestones', 'checkpoint_interval',
               'warmup_iters')


def alternating_settings(cfg: Config) -> ConfigDict:
    """The config's ``alternating_cfg``, checked."""
    alt = cfg.get('alternating_cfg')
    if alt is None:
        raise KeyError(
            'the config has no alternating_cfg (the stage settings of '
            'alternating training); inherit one of configs/rfcn/'
            '*_alt-4step_*.py or add alternating_cfg=dict(rpn=dict('
            'max_iters=..., milestones=[...]), rfcn=dict(...))')
    for kind in ('rpn', 'rfcn'):
        if 'max_iters' not in alt.get(kind, {}):
            raise KeyError(f'alternating_cfg.{kind}.max_iters is missing '
                           f'(iterations of each {kind} stage)')
    for where, settings in [('rpn', alt.rpn), ('rfcn', alt.rfcn)] + [
            (f'stages.{name}', s)
            for name, s in alt.get('stages', {}).items()
    ]:
        unknown = sorted(set(settings) - set(_STAGE_KEYS))
        if unknown:
            raise KeyError(f'alternating_cfg.{where} has unknown keys '
                           f'{unknown}; a stage takes {list(_STAGE_KEYS)}')
    variant = alt.get('variant', '4-step')
    if variant not in VARIANTS:
        raise ValueError(f'alternating_cfg.variant is {variant!r}; known: '
                         f'{sorted(VARIANTS)}')
    for name in alt.get('stages', {}):
        if not any(name == s.name for v in VARIANTS.values()
                   for s in v.stages):
            raise KeyError(f'alternating_cfg.stages.{name}: no variant has '
                           'a stage of that name')
    return alt


def stage_settings(alt: ConfigDict, stage: Stage) -> dict:
    """``max_iters``, ``milestones``, ``checkpoint_interval`` and
    ``warmup_iters`` (the last two None where unset) of ``stage``: its
    kind's, updated by ``stages.<name>``."""
    settings = dict(alt[stage.kind])
    settings.update(alt.get('stages', {}).get(stage.name, {}))
    max_iters = int(settings['max_iters'])
    if max_iters < 1:
        raise ValueError(f'alternating_cfg: stage {stage.name} has '
                         f'max_iters={max_iters}; it must be at least 1')
    milestones = [int(m) for m in settings.get('milestones', [])]
    if any(not 0 < m < max_iters for m in milestones):
        raise ValueError(f'alternating_cfg: stage {stage.name} has lr '
                         f'milestones {milestones} outside (0, {max_iters})')
    warmup = settings.get('warmup_iters')
    if warmup is not None and not 0 <= int(warmup) <= max_iters:
        raise ValueError(f'alternating_cfg: stage {stage.name} has '
                         f'warmup_iters={warmup} outside [0, {max_iters}]')
    return dict(max_iters=max_iters, milestones=milestones,
                checkpoint_interval=settings.get('checkpoint_interval'),
                warmup_iters=None if warmup is None else int(warmup))


def dataset_leaves(dataset: dict) -> List[dict]:
    """The datasets that read files (those with an ``ann_file``) under
    wrappers such as ``RepeatDataset`` and ``ConcatDataset``, in order."""
    if 'datasets' in dataset:
        return [
            leaf for child in dataset['datasets']
            for leaf in dataset_leaves(child)
        ]
    if 'dataset' in dataset:
        return dataset_leaves(dataset['dataset'])
    return [dataset]


def proposal_pipeline(pipeline: List[dict],
                      num_max_proposals: Optional[int]) -> List[dict]:
    """``pipeline`` reading proposals: ``LoadProposals`` after the image is
    loaded, and every run of box-moving transforms wrapped in one
    ``ProposalBroadcaster`` so that the proposals move with the boxes."""
    out, moving = [], []
    for transform in pipeline:
        kind = transform['type']
        kind = kind if isinstance(kind, str) else kind.__name__
        if kind in _UNSUPPORTED:
            raise ValueError(
                f'the training pipeline has {kind}, which moves the boxes '
                'in a way ProposalBroadcaster cannot repeat on the '
                'proposals; alternating training supports '
                f'{", ".join(_BOX_TRANSFORMS)} and transforms that leave '
                'the boxes in place')
        if kind in ('LoadProposals', 'ProposalBroadcaster'):
            raise ValueError(
                f'the training pipeline already has {kind}: alternating '
                'training adds it to the R-FCN stages itself')
        if kind in _BOX_TRANSFORMS:
            moving.append(copy.deepcopy(transform))
            continue
        if moving:
            out.append(dict(type='ProposalBroadcaster', transforms=moving))
            moving = []
        out.append(copy.deepcopy(transform))
        if kind == 'LoadImageFromFile':
            out.append(
                dict(type='LoadProposals',
                     num_max_proposals=num_max_proposals))
    if moving:
        out.append(dict(type='ProposalBroadcaster', transforms=moving))
    if not any(t['type'] == 'LoadProposals' for t in out):
        raise ValueError('the training pipeline has no LoadImageFromFile '
                         'to put LoadProposals after')
    return out


def initialisation(cfg: Config) -> str:
    """What the config's model starts from: 'ImageNet' when some part
    loads pretrained weights (``init_cfg`` of type Pretrained), else
    'random init'."""

    def pretrained(node) -> bool:
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                return True
            return any(pretrained(v) for v in node.values())
        if isinstance(node, (list, tuple)):
            return any(pretrained(v) for v in node)
        return False

    return 'ImageNet' if pretrained(cfg.model) else 'random init'


def _drop_pretrained(node) -> None:
    """Remove every ``init_cfg`` (the ImageNet weights) under ``node``: a
    stage that starts from another stage's checkpoint loads all of them."""
    if isinstance(node, dict):
        node.pop('init_cfg', None)
        for value in node.values():
            _drop_pretrained(value)
    elif isinstance(node, list):
        for value in node:
            _drop_pretrained(value)


def proposal_cfg(cfg: Config) -> dict:
    """The RPN ``test_cfg`` that writes the proposals."""
    alt = cfg.alternating_cfg
    rpn = dict(cfg.model.train_cfg.rpn_proposal)
    rpn.update({k: v for k, v in alt.get('proposals', {}).items()
                if k != 'num_max_proposals'})
    return rpn


def num_max_proposals(cfg: Config) -> int:
    """How many proposals per image the R-FCN stages read."""
    return cfg.alternating_cfg.get('proposals', {}).get(
        'num_max_proposals', proposal_cfg(cfg)['max_per_img'])


def _stage_model(cfg: Config, stage: Stage, rpn_test_cfg: dict) -> dict:
    model = copy.deepcopy(cfg.model.to_dict())
    if model.get('neck') is not None:
        raise ValueError('alternating training expects the R-FCN layout '
                         '(backbone to conv4, no neck); the config has '
                         f'model.neck {model["neck"].get("type")}')
    backbone = model['backbone']
    if stage.freeze_shared:
        backbone['frozen_stages'] = backbone.get('num_stages', 4)
    if stage.init:
        _drop_pretrained(model)
    if stage.kind == 'rpn':
        return dict(
            type='RPN',
            data_preprocessor=model['data_preprocessor'],
            backbone=backbone,
            neck=None,
            rpn_head=model['rpn_head'],
            train_cfg=dict(rpn=model['train_cfg']['rpn']),
            test_cfg=dict(rpn=rpn_test_cfg))
    model['rpn_head'] = None
    model['train_cfg'] = {
        k: v
        for k, v in model['train_cfg'].items()
        if k not in ('rpn', 'rpn_proposal')
    }
    model['test_cfg'] = {
        k: v
        for k, v in model['test_cfg'].items() if k != 'rpn'
    }
    return model


def _schedule(schedulers: List[dict], max_iters: int, milestones: List[int],
              warmup_iters: Optional[int] = None) -> List[dict]:
    """The config's schedulers over ``max_iters``: MultiStepLR at
    ``milestones``, the ``LinearLR`` warm-up ``warmup_iters`` long (None:
    the config's, clipped; 0: none; mmdet's usual one added where the
    config has none), others ended at ``max_iters``."""
    out = []
    schedulers = copy.deepcopy(schedulers)
    if warmup_iters and not any(s['type'] == 'LinearLR' for s in schedulers):
        schedulers.insert(0, dict(type='LinearLR', start_factor=0.001,
                                  by_epoch=False, begin=0))
    for sched in schedulers:
        if sched.get('by_epoch', True):
            raise ValueError('alternating training runs by iteration; the '
                             f'config\'s {sched["type"]} has by_epoch=True')
        if sched['type'] == 'MultiStepLR':
            sched.update(begin=0, end=max_iters, milestones=milestones)
        elif sched['type'] == 'LinearLR' and warmup_iters is not None:
            sched.update(begin=0, end=warmup_iters)
        elif sched.get('end', max_iters) > max_iters:
            sched['end'] = max_iters
        if sched.get('begin', 0) < sched.get('end', max_iters):
            out.append(sched)
    return out


def stage_train_config(cfg: Config, stage: Stage, work_dir: str,
                       init_checkpoint: Optional[str],
                       proposal_files: Optional[List[str]] = None) -> Config:
    """The config ``tools/train.py`` runs for ``stage``.

    Args:
        cfg (Config): The R-FCN config with ``alternating_cfg``.
        stage (Stage): The stage.
        work_dir (str): The stage's work dir.
        init_checkpoint (str, optional): The checkpoint it starts from (None:
            the config's initialisation). An R-FCN stage loads all of it
            (``load_from``: it must hold every weight of the stage's
            model); an RPN stage starts its backbone from the checkpoint's
            ``backbone.*`` (``init_cfg``) and its head afresh, as the
            reference trainings do.
        proposal_files (list[str], optional): R-FCN stages: one proposal
            file per training dataset (see :func:`dataset_leaves`).
    """
    alt = alternating_settings(cfg)
    settings = stage_settings(alt, stage)
    out = copy.deepcopy(cfg)
    out.model = _stage_model(cfg, stage, dict(cfg.model.test_cfg.rpn))
    out.work_dir = work_dir
    out.load_from = None
    out.resume = False
    if init_checkpoint is not None and stage.kind == 'rpn':
        out.model.backbone.init_cfg = dict(
            type='Pretrained', checkpoint=init_checkpoint, prefix='backbone.')
    elif init_checkpoint is not None:
        out.load_from = init_checkpoint
    out.pop('alternating_cfg', None)
    if stage.kind == 'rfcn':
        leaves = dataset_leaves(out.train_dataloader.dataset)
        if proposal_files is None or len(proposal_files) != len(leaves):
            raise ValueError(
                f'stage {stage.name} needs one proposal file per training '
                f'dataset ({len(leaves)}), got {proposal_files}')
        keep = num_max_proposals(cfg)
        for leaf, path in zip(leaves, proposal_files):
            if leaf.get('proposal_file'):
                raise ValueError(
                    'the training dataset already reads proposal_file='
                    f'{leaf["proposal_file"]}; alternating training makes '
                    'its own')
            leaf['proposal_file'] = path
            leaf['pipeline'] = proposal_pipeline(leaf['pipeline'], keep)
    max_iters = settings['max_iters']
    out.train_cfg = dict(
        type='IterSeededTrainLoop',
        max_iters=max_iters,
        val_interval=max_iters + 1)
    # no validation inside a stage: the R-FCN stages have no RPN to
    # propose boxes for the test images; the merged model is evaluated
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        out[key] = None
    out.param_scheduler = _schedule(
        out.get('param_scheduler', []), max_iters, settings['milestones'],
        settings['warmup_iters'])
    ckpt = out.default_hooks.checkpoint
    ckpt.by_epoch = False
    ckpt.interval = min(settings['checkpoint_interval'] or ckpt.interval,
                        max_iters)
    # keep the final checkpoint: the next stage starts from it
    ckpt.max_keep_ckpts = max(2, ckpt.get('max_keep_ckpts', 2))
    return out


def proposal_dump_config(cfg: Config, stage: Stage, work_dir: str,
                         proposals_file: str) -> Config:
    """The config ``tools/test.py`` runs with ``stage``'s checkpoint to
    write the proposals of every training image (in the test pipeline, no
    flip) with mmdet's ``DumpProposals``, in original-image coordinates."""
    out = copy.deepcopy(cfg)
    out.model = _stage_model(cfg, stage, proposal_cfg(cfg))
    _drop_pretrained(out.model)
    out.work_dir = work_dir
    out.pop('alternating_cfg', None)
    test_pipeline = dataset_leaves(cfg.test_dataloader.dataset)[0].pipeline
    leaves = []
    for leaf in dataset_leaves(cfg.train_dataloader.dataset):
        leaf = copy.deepcopy(leaf)
        leaf.pop('filter_cfg', None)
        leaf.update(test_mode=True, pipeline=copy.deepcopy(test_pipeline))
        leaves.append(leaf)
    dataset = leaves[0] if len(leaves) == 1 else dict(
        type='ConcatDataset', datasets=leaves)
    loader = cfg.test_dataloader
    out.test_dataloader = dict(
        batch_size=loader.get('batch_size', 1),
        num_workers=loader.get('num_workers', 0),
        persistent_workers=False,
        drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dataset)
    out.test_evaluator = dict(
        type='DumpProposals',
        output_dir=osp.dirname(proposals_file),
        proposals_file=osp.basename(proposals_file))
    out.test_cfg = dict(type='TestLoop')
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        out[key] = None
    return out
