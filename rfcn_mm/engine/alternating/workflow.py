"""Running the stages of alternating training one after another.

Each stage trains in its own process through ``tools/train.py`` (so through
the same launchers, work-dir lock, checkpointing and checks as any
training), in ``<work_dir>/<stage>/``, from the config written there
(``<stage>_config.py``). An RPN stage whose proposals a later stage learns
from then writes them with ``tools/test.py`` and mmdet's ``DumpProposals``
(every rank's results gathered on rank 0). The workflow records each
finished stage in ``<work_dir>/alternating_state.json`` (written
atomically) with its checkpoint and proposal files; with ``resume=True`` a
recorded stage whose files are still there and whole is skipped, and the
first unfinished one continues from its latest checkpoint. A proposal file
counts only once it has been read back whole and found to cover every
training image. At the end the RPN and the R-FCN of the last stages are
merged into ``<work_dir>/final.pth``, which the config (RPN included)
loads without a missing or unexpected key.
"""
import datetime
import glob
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

from mmengine.config import Config

from rfcn_mm.utils.atomic_io import atomic_write
from .stage_checkpoints import merge_stage_checkpoints
from .stage_proposals import (build_leaf_datasets, load_proposal_dump,
                              proposal_recall, split_proposals)
from .stages import (VARIANTS, Stage, alternating_settings, dataset_leaves,
                     initialisation, num_max_proposals, proposal_dump_config,
                     stage_settings, stage_train_config)

STATE_FILE = 'alternating_state.json'
FINAL_CHECKPOINT = 'final.pth'


class AlternatingStageError(RuntimeError):
    """A stage of alternating training failed."""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


def launch_command(script: str, args: List[str], launcher: str,
                   gpus: int) -> List[str]:
    """The command that runs ``script`` (``tools/train.py`` or
    ``tools/test.py``) with ``args`` under ``launcher``: one process
    (``none``), ``gpus`` processes on this machine through torchrun
    (``pytorch``; ``PORT`` sets the master port, as in
    ``tools/dist_train.sh``), or the tasks of the current slurm allocation
    through ``srun`` (``slurm``; ``SRUN_ARGS`` adds arguments)."""
    if launcher == 'none':
        return [sys.executable, script, *args]
    if launcher == 'pytorch':
        return [
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={gpus}',
            f'--master_port={os.environ.get("PORT", "29500")}', script,
            *args, '--launcher', 'pytorch'
        ]
    if launcher == 'slurm':
        return [
            'srun', '--kill-on-bad-exit=1',
            *os.environ.get('SRUN_ARGS', '').split(), sys.executable, '-u',
            script, *args, '--launcher', 'slurm'
        ]
    raise ValueError(f'launcher must be none, pytorch or slurm, got '
                     f'{launcher!r}')


def _newest_run_folder(stage_dir: str) -> Optional[str]:
    """The newest ``<stage_dir>/<timestamp>/`` mmengine made."""
    runs = sorted(
        d for d in glob.glob(osp.join(stage_dir, '[0-9]' * 8 + '_*'))
        if osp.isdir(d))
    return runs[-1] if runs else None


def stage_log(stage_dir: str) -> Optional[str]:
    """The log file of the newest run in ``stage_dir``."""
    run = _newest_run_folder(stage_dir)
    if run is None:
        return None
    logs = glob.glob(osp.join(run, '*.log'))
    return logs[0] if logs else run


def final_losses(stage_dir: str) -> Dict[str, float]:
    """The losses of the last logged iteration of the stage (from the
    newest run's ``vis_data/scalars.json``)."""
    for run in sorted(glob.glob(osp.join(stage_dir, '[0-9]' * 8 + '_*')),
                      reverse=True):
        path = osp.join(run, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        last = {}
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if 'loss' in record:
                    last = record
        if last:
            return {k: v for k, v in last.items() if k.startswith('loss')}
    return {}


class AlternatingTraining:
    """The alternating training of one config in one work dir.

    Args:
        cfg (Config): The R-FCN config, with ``alternating_cfg`` (see
            :mod:`.stages`) and ``work_dir`` set.
        config_path (str): Its file (recorded in the state).
        tools_dir (str): The folder of ``train.py`` and ``test.py``.
        variant (str, optional): ``4-step`` or ``5-stage``; default the
            config's ``alternating_cfg.variant``.
        launcher (str): ``none``, ``pytorch`` or ``slurm``. Defaults to
            'none'.
        gpus (int): Processes per stage with ``launcher='pytorch'``.
        log (callable): Where progress lines go. Defaults to ``print``.
    """

    def __init__(self,
                 cfg: Config,
                 config_path: str,
                 tools_dir: str,
                 variant: Optional[str] = None,
                 launcher: str = 'none',
                 gpus: int = 1,
                 log: Callable[[str], None] = print) -> None:
        alt = alternating_settings(cfg)
        self.cfg = cfg
        self.config_path = osp.abspath(config_path)
        self.tools_dir = tools_dir
        self.variant = VARIANTS[variant or alt.get('variant', '4-step')]
        self.launcher = launcher
        self.gpus = gpus
        self.log = log
        self.work_dir = osp.abspath(cfg.work_dir)
        self.state_path = osp.join(self.work_dir, STATE_FILE)
        self.state: dict = {}
        self.started = time.time()
        self.initial = initialisation(cfg)

    # ------------------------------------------------------------- state
    def _load_state(self) -> dict:
        if not osp.isfile(self.state_path):
            return {}
        try:
            with open(self.state_path) as f:
                state = json.load(f)
        except ValueError as e:
            raise AlternatingStageError(
                f'{self.state_path} cannot be read ({e}); move it away to '
                'start the workflow afresh') from None
        if state.get('variant') != self.variant.name:
            raise AlternatingStageError(
                f'{self.work_dir} holds a {state.get("variant")} run and '
                f'this is {self.variant.name}: use another --work-dir')
        return state

    def _save_state(self) -> None:
        atomic_write(json.dumps(self.state, indent=2), self.state_path)

    def _finished(self, stage: Stage) -> bool:
        """Whether ``stage`` is recorded and its files are whole."""
        record = self.state.get('stages', {}).get(stage.name)
        if not record:
            return False
        ckpt = record['checkpoint']
        if not osp.isfile(ckpt) or osp.getsize(ckpt) != record['size']:
            return False
        return all(
            osp.isfile(p) and _sha256(p) == sha
            for p, sha in record.get('proposal_files', {}).items())

    # ------------------------------------------------------------- steps
    def _stage_dir(self, stage: Stage) -> str:
        return osp.join(self.work_dir, stage.name)

    def _run(self, stage: Stage, what: str, script: str,
             args: List[str]) -> None:
        cmd = launch_command(
            osp.join(self.tools_dir, script), args, self.launcher, self.gpus)
        env = dict(os.environ)
        root = osp.dirname(self.tools_dir)
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in (root, env.get('PYTHONPATH')) if p)
        code = subprocess.run(
            cmd, env=env, preexec_fn=_die_with_parent).returncode
        if code != 0:
            log = stage_log(self._stage_dir(stage)) if script == 'train.py' \
                else stage_log(osp.join(self._stage_dir(stage), 'proposals'))
            raise AlternatingStageError(
                f'stage {self._number(stage)} {stage.name} '
                f'({stage.describe(self.initial)}) failed in {what} (exit '
                f'status {code}); its log: {log or self._stage_dir(stage)}')

    def _number(self, stage: Stage) -> str:
        return f'{self.variant.stages.index(stage) + 1}/' \
            f'{len(self.variant.stages)}'

    def _init_checkpoint(self, stage: Stage) -> Optional[str]:
        records = self.state['stages']
        if not stage.init:
            return None
        if len(stage.init) == 1:
            return records[stage.init[0]]['checkpoint']
        rfcn, rpn = stage.init
        out = osp.join(self._stage_dir(stage), f'init_{rfcn}+{rpn}.pth')
        merge_stage_checkpoints(
            records[rpn]['checkpoint'],
            records[rfcn]['checkpoint'],
            out,
            keep_rpn_head=False,
            require_shared=False,
            meta=dict(alternating_init=f'{rfcn} with the backbone of {rpn}'))
        return out

    def _train(self, stage: Stage, resume: bool) -> str:
        stage_dir = self._stage_dir(stage)
        os.makedirs(stage_dir, exist_ok=True)
        max_iters = stage_settings(self.cfg.alternating_cfg,
                                   stage)['max_iters']
        final = osp.join(stage_dir, f'iter_{max_iters}.pth')
        proposal_files = None
        if stage.proposals:
            proposal_files = list(
                self.state['stages'][stage.proposals]['proposal_files'])
        cfg = stage_train_config(self.cfg, stage, stage_dir,
                                 self._init_checkpoint(stage),
                                 proposal_files)
        cfg_path = osp.join(stage_dir, f'{stage.name}_config.py')
        cfg.dump(cfg_path)
        if resume and osp.isfile(final):
            self.log(f'  {stage.name}: training already complete ({final})')
            return final
        args = [cfg_path, '--work-dir', stage_dir]
        if resume:
            args.append('--resume')
        self._run(stage, 'training', 'train.py', args)
        if not osp.isfile(final):
            raise AlternatingStageError(
                f'stage {stage.name} ended without its final checkpoint '
                f'{final}; its log: {stage_log(stage_dir)}')
        return final

    def _proposals(self, stage: Stage, checkpoint: str) -> dict:
        stage_dir = self._stage_dir(stage)
        dump_dir = osp.join(stage_dir, 'proposals')
        dump_path = osp.join(dump_dir, 'train_all.pkl')
        if osp.exists(dump_path):
            os.remove(dump_path)  # never read a previous run's dump
        cfg = proposal_dump_config(self.cfg, stage, dump_dir, dump_path)
        cfg_path = osp.join(stage_dir, f'{stage.name}_proposals_config.py')
        os.makedirs(dump_dir, exist_ok=True)
        cfg.dump(cfg_path)
        self._run(stage, 'writing the proposals', 'test.py',
                  [cfg_path, checkpoint, '--work-dir', dump_dir])
        dump = load_proposal_dump(dump_path)
        leaves = dataset_leaves(self.cfg.train_dataloader.dataset)
        datasets = build_leaf_datasets(leaves)
        paths = [
            osp.join(stage_dir, f'proposals_train_{i}.pkl')
            for i in range(len(leaves))
        ]
        counts = split_proposals(dump, datasets, paths)
        recall = proposal_recall(
            dump, datasets, num_proposals=num_max_proposals(self.cfg))
        return dict(
            proposal_files={p: _sha256(p)
                            for p in paths},
            proposal_images=counts,
            recall={str(k): v
                    for k, v in recall.items()})

    def _summary(self, stage: Stage, record: dict) -> str:
        losses = ', '.join(f'{k} {v:.4f}'
                           for k, v in record.get('losses', {}).items())
        recall = record.get('recall')
        line = (f'[alternating {self.variant.name}] stage '
                f'{self._number(stage)} {stage.name} done in '
                f'{_duration(record["seconds"])}: {losses or "no losses"}')
        if recall:
            line += '; proposal recall (train, top ' \
                f'{num_max_proposals(self.cfg)}) IoU 0.5 ' \
                f'{recall["0.5"]:.3f}, IoU 0.7 {recall["0.7"]:.3f} ' \
                f'({sum(record["proposal_images"])} images)'
        return line

    def _progress(self, done: int) -> str:
        total = len(self.variant.stages)
        return (f'[alternating {self.variant.name}] {done}/{total} stages '
                f'done, {_duration(time.time() - self.started)} elapsed')

    # --------------------------------------------------------------- run
    def run(self, resume: bool = False) -> str:
        """Run (or with ``resume`` continue) every stage and merge the
        final model.

        Returns:
            str: The final checkpoint.
        """
        os.makedirs(self.work_dir, exist_ok=True)
        self.state = self._load_state() if resume else {}
        self.state.update(
            variant=self.variant.name, config=self.config_path)
        self.state.setdefault('stages', {})
        if not resume:
            self._save_state()
        self.cfg.dump(
            osp.join(self.work_dir, osp.basename(self.config_path)))
        # with resume: the finished stages up to the first unfinished one
        # are skipped, that one continues from its latest checkpoint, and
        # every later stage starts afresh (its inputs are new)
        continuing = resume
        for i, stage in enumerate(self.variant.stages):
            if continuing and self._finished(stage):
                self.log(f'[alternating {self.variant.name}] stage '
                         f'{self._number(stage)} {stage.name} finished '
                         'before: skipped')
                continue
            for later in self.variant.stages[i:]:
                self.state['stages'].pop(later.name, None)
            self.log(f'[alternating {self.variant.name}] stage '
                     f'{self._number(stage)} {stage.name}: '
                     f'{stage.describe(self.initial)}')
            start = time.time()
            checkpoint = self._train(stage, continuing)
            continuing = False
            record = dict(checkpoint=checkpoint,
                          size=osp.getsize(checkpoint),
                          losses=final_losses(self._stage_dir(stage)))
            if stage.kind == 'rpn' and self.variant.needs_proposals(stage):
                record.update(self._proposals(stage, checkpoint))
            record['seconds'] = time.time() - start
            self.state['stages'][stage.name] = record
            self._save_state()
            self.log(self._summary(stage, record))
            self.log(self._progress(i + 1))
        return self._merge_final()

    def _merge_final(self) -> str:
        rpn, rfcn = self.variant.final
        records = self.state['stages']
        out = osp.join(self.work_dir, FINAL_CHECKPOINT)
        merge_stage_checkpoints(
            records[rpn]['checkpoint'],
            records[rfcn]['checkpoint'],
            out,
            keep_rpn_head=True,
            require_shared=True,
            meta=dict(
                alternating=dict(
                    variant=self.variant.name,
                    config=self.config_path,
                    rpn=rpn,
                    rfcn=rfcn)))
        self.state['final'] = out
        self._save_state()
        self.log(f'[alternating {self.variant.name}] final model: {out} '
                 f'(the RPN of {rpn}, the R-FCN of {rfcn}; conv1-conv4 '
                 f'shared); {_duration(time.time() - self.started)} in all')
        return out


def _die_with_parent() -> None:
    """In the stage's process: be sent SIGTERM when the workflow's process
    dies (Linux), so that killing the workflow stops its stage too."""
    try:
        import ctypes
        import signal
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
