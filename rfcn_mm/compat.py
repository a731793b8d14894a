"""Fixes for mmengine 0.10.7 / mmdet 3.3.0 / mmcv 2.1.0 on today's stack.

Everything that rfcn_mm changes about its dependencies' behaviour lives in
this one module, and ``import rfcn_mm`` applies it (idempotently):

1. **Checkpoints under torch >= 2.6.** ``torch.load`` now defaults to
   ``weights_only=True`` and mmengine calls it without the argument, so a
   checkpoint written by mmengine's Runner can neither be loaded
   (``load_from``) nor resumed (``--resume``): its message hub holds
   ``HistoryBuffer`` objects with numpy arrays, and ``HistoryBuffer``
   pickles its statistics methods as ``getattr(HistoryBuffer, 'min')``.
   The fix keeps torch's weights-only unpickler and adds exactly those types
   to its allow-list (:func:`allow_mmengine_checkpoints`). ``getattr`` is
   not allowed as such: its name is bound to :func:`_history_buffer_getattr`,
   which resolves only registered ``HistoryBuffer`` statistics methods. Any
   other global in a checkpoint is still refused by torch, so loading stays
   safe; nothing here sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` or passes
   ``weights_only=False``.
2. **A torchvision that is installed but does not import** (the PyPI wheel
   next to a CPU torch) makes mmengine's environment report, which the
   Runner prints at start-up, raise: it catches only ``ModuleNotFoundError``.
   :func:`patch_collect_env` reports such a torchvision as unusable instead.
3. **setuptools >= 82 has no pkg_resources**, which mmengine's
   ``is_installed``/``get_installed_path`` import, so any config that
   inherits ``mmdet::_base_/...`` fails to load.
   :func:`patch_package_utils` answers both from importlib instead.
4. **mmcv's NMS under autocast.** Its kernels take float32 (and float16 on
   CUDA) boxes and scores of one dtype, so mixed precision (bfloat16 on CPU
   or CUDA, or boxes and scores of different dtypes) stops the RPN with
   "expected scalar type Float but found BFloat16". :func:`patch_nms_dtypes`
   runs such calls in float32 (NMS decisions need the precision anyway).
5. **Multi-process training without GPUs.** mmengine's torchrun launcher
   calls ``torch.cuda.set_device`` unconditionally, so ``--launcher pytorch``
   dies on CPU-only machines, and the Runner then wraps the model in DDP
   with ``device_ids=[local_rank]``, which DDP refuses for a CPU module.
   :func:`patch_cpu_dist` initialises the process group without
   ``set_device`` when CUDA is unavailable (gloo), names the fix when the
   config asks for nccl there, and drops ``device_ids`` for CPU modules.
6. **Leaving a multi-process run.** mmengine never destroys the process
   group it creates. A rank that leaves while its peers still hold their
   gloo connections can make a peer abort ("terminate called without an
   active exception") after its work is done and saved, and torchrun then
   reports the whole run as failed (seen in about one CPU run in six).
   :func:`finish_distributed`, which ``tools/train.py`` and
   ``tools/test.py`` call after a successful run, lets every rank finish
   before any of them destroys the group.
7. **Checkpoints that survive a kill.** mmengine's ``CheckpointHook``
   deletes the oldest checkpoint *before* writing the new one, and its
   local file backend writes in place, so with ``max_keep_ckpts=1`` a kill
   during a save leaves a truncated file, no previous checkpoint and a
   ``last_checkpoint`` naming a deleted file: all work is lost.
   :func:`patch_atomic_checkpoints` makes every local write of mmengine's
   file backend atomic (:func:`rfcn_mm.utils.atomic_write`: temporary
   file in the same folder, flush, fsync, rename; the temporaries of
   killed writers are removed by the next write), reorders the hook to
   save, then point ``last_checkpoint`` at the new file (atomically too),
   and only then delete old checkpoints, and
   lets ``--resume`` fall back to the newest complete checkpoint when
   ``last_checkpoint`` names a missing file.
8. **A checkpoint that does not fit the model** is loaded by the Runner
   (``load_from``, ``tools/test.py``, ``--resume``) with a "size mismatch"
   warning, and the run goes on with those layers at random values: an
   evaluation of garbage with exit code 0. :func:`patch_checkpoint_fit`
   makes the Runner refuse such a checkpoint, naming the parameters whose
   shapes differ and those it lacks; a file that is no checkpoint at all
   (text, ONNX, truncated, ...) is named with what it is
   (:mod:`rfcn_mm.utils.checkpoint_file`), here and in mmengine's
   ``load_checkpoint``. Partial loading stays possible where it is meant:
   ``init_cfg=dict(type='Pretrained', ...)`` is not affected.
9. **``rfcn_mm::`` config bases.** mmengine resolves ``pkg::path`` bases
   only for the OpenMMLab packages of its scope table.
   :func:`register_config_scope` adds rfcn_mm, whose configs are installed
   as ``rfcn_mm/.mim/configs`` (mmdet's layout), so a user's config can
   inherit ``rfcn_mm::rfcn/rfcn_r101_voc0712.py``; :mod:`rfcn_mm.registry`
   gives that scope its registries.
10. **Resuming from a checkpoint the config no longer describes** restores
    the checkpoint's optimizer and schedulers, silently ignoring a new
    learning rate or milestones, fails with ``KeyError: 'step'`` for
    another optimizer type, and exits 0 having done nothing when
    ``max_iters`` is below the checkpoint's iteration.
    :func:`patch_resume_checks` refuses each case by name
    (:mod:`rfcn_mm.engine.resume_check`).
11. **Proposal recall under numpy 2.** mmdet's ``eval_recalls`` gathers
    the per-image IoU matrices (of different shapes) with ``np.array``,
    which numpy >= 1.24 refuses ("inhomogeneous shape"), so the recall of
    any proposal set with two images of different box counts fails.
    :func:`patch_recall_ragged_arrays` gives that module a ``np`` whose
    ``array`` builds the object array older numpy built there.
"""
import contextlib
import functools
import glob
import importlib.metadata
import importlib.util
import logging
import os.path as osp
import pickle
import re
import sys
from typing import Any, Callable, Dict, Iterator, List

import numpy as np
import torch

from rfcn_mm.utils.atomic_io import atomic_write

_APPLIED: Dict[str, bool] = {}
# registered by every HistoryBuffer.__init__; custom ones by their import
_DEFAULT_STATISTICS = frozenset(('min', 'max', 'current', 'mean'))


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling checkpoints.

    Only ``getattr(HistoryBuffer, <statistics method>)`` is resolved, which
    is what ``HistoryBuffer.__getstate__`` writes; everything else is
    refused.
    """
    from mmengine.logging import HistoryBuffer
    allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) in a checkpoint: '
        'only HistoryBuffer statistics methods are allowed')


def _numpy_safe_globals() -> List[Any]:
    """numpy types found in mmengine checkpoints, under their numpy 1 and
    numpy 2 module paths."""
    multiarray = getattr(np, '_core', None)
    multiarray = (multiarray.multiarray
                  if multiarray is not None else np.core.multiarray)
    safe = [np.ndarray, np.dtype]
    for name in ('_reconstruct', 'scalar'):
        fn = getattr(multiarray, name)
        safe.append(fn)
        safe.append((fn, f'numpy.core.multiarray.{name}'))
        safe.append((fn, f'numpy._core.multiarray.{name}'))
    # numpy >= 1.25 pickles dtypes of arrays through their classes
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for code in ('?', 'b', 'B', 'h', 'H', 'i', 'I', 'l', 'L', 'q', 'Q',
                     'e', 'f', 'd', 'g', 'U', 'S'):
            safe.append(type(np.dtype(code)))
    return safe


def allow_mmengine_checkpoints() -> None:
    """Let the weights-only unpickler read checkpoints written by mmengine's
    Runner (see the module docstring)."""
    if _APPLIED.get('checkpoints'):
        return
    from mmengine.logging import HistoryBuffer
    safe = [HistoryBuffer] + _numpy_safe_globals()
    safe.append((_history_buffer_getattr, 'builtins.getattr'))
    torch.serialization.add_safe_globals(safe)
    _APPLIED['checkpoints'] = True


def _torchvision_import_error():
    """The exception importing torchvision raises, or None if it imports or
    is simply not installed."""
    if 'torchvision' in sys.modules and sys.modules['torchvision'] is not None:
        return None
    try:
        import torchvision  # noqa: F401
    except ModuleNotFoundError:
        return None
    except Exception as e:  # a broken install raises RuntimeError & co.
        sys.modules.pop('torchvision', None)
        return e
    return None


def patch_collect_env() -> None:
    """Make mmengine's ``collect_env`` survive a broken torchvision."""
    if _APPLIED.get('collect_env'):
        return
    import mmdet.utils.collect_env  # noqa: F401
    import mmengine.runner.runner as runner_mod
    import mmengine.utils.dl_utils as dl_utils

    # the packages re-export functions named like these modules
    collect_env_mod = sys.modules['mmengine.utils.dl_utils.collect_env']
    mmdet_collect_env = sys.modules['mmdet.utils.collect_env']

    original = collect_env_mod.collect_env

    @functools.wraps(original)
    def collect_env() -> dict:
        error = _torchvision_import_error()
        if error is None:
            return original()
        sys.modules['torchvision'] = None  # import now raises ModuleNotFound
        try:
            env = original()
        finally:
            sys.modules.pop('torchvision', None)
        env['TorchVision'] = f'unusable ({type(error).__name__}: {error})'
        return env

    for module in (collect_env_mod, dl_utils, runner_mod):
        module.collect_env = collect_env
    mmdet_collect_env.collect_base_env = collect_env
    _APPLIED['collect_env'] = True


def _is_installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def _get_installed_path(package: str) -> str:
    # a distribution may install a module of another name (mmcv-full: mmcv)
    modules = [package] + [
        m for m, dists in importlib.metadata.packages_distributions().items()
        if package in dists
    ]
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            return osp.dirname(spec.origin)
    raise importlib.metadata.PackageNotFoundError(package)


def patch_package_utils() -> None:
    """Answer mmengine's package queries without pkg_resources."""
    if _APPLIED.get('package_utils'):
        return
    import mmengine.config.config as config_mod
    import mmengine.hub.hub as hub_mod
    import mmengine.utils as utils_mod
    import mmengine.utils.package_utils as package_utils
    for module in (package_utils, utils_mod, config_mod, hub_mod):
        if hasattr(module, 'is_installed'):
            module.is_installed = _is_installed
        if hasattr(module, 'get_installed_path'):
            module.get_installed_path = _get_installed_path
    _APPLIED['package_utils'] = True


def patch_nms_dtypes() -> None:
    """Run mmcv's ``nms`` in float32 when boxes and scores are of mixed or
    reduced precision; ``batched_nms`` looks ``nms`` up in the same
    module, so it is covered too."""
    if _APPLIED.get('nms'):
        return
    import mmcv.ops
    nms_mod = sys.modules['mmcv.ops.nms']  # mmcv.ops.nms is the function
    original = nms_mod.nms

    @functools.wraps(original)
    def nms(boxes, scores, iou_threshold, offset=0, score_threshold=0,
            max_num=-1):
        full = (torch.float32, torch.float64)
        if isinstance(boxes, torch.Tensor) and (
                boxes.dtype != scores.dtype or boxes.dtype not in full):
            dets, inds = original(boxes.float(), scores.float(),
                                  iou_threshold, offset, score_threshold,
                                  max_num)
            return dets.to(boxes.dtype), inds
        return original(boxes, scores, iou_threshold, offset,
                        score_threshold, max_num)

    nms_mod.nms = nms
    mmcv.ops.nms = nms
    _APPLIED['nms'] = True


def patch_cpu_dist() -> None:
    """Let mmengine's pytorch launcher run without CUDA (gloo backend)."""
    if _APPLIED.get('cpu_dist'):
        return
    dist_utils = sys.modules.get('mmengine.dist.utils')
    if dist_utils is None:
        import mmengine.dist.utils  # noqa: F401
        dist_utils = sys.modules['mmengine.dist.utils']
    original = dist_utils._init_dist_pytorch

    @functools.wraps(original)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend != 'gloo':
            raise RuntimeError(
                f'distributed backend "{backend}" needs GPUs and none is '
                'available: set env_cfg.dist_cfg.backend="gloo" to train '
                'with several CPU processes')
        torch.distributed.init_process_group(backend=backend, **kwargs)

    dist_utils._init_dist_pytorch = _init_dist_pytorch

    from mmengine.model import MMDistributedDataParallel
    ddp_init = MMDistributedDataParallel.__init__

    @functools.wraps(ddp_init)
    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and kwargs.get('device_ids') is not None:
            kwargs['device_ids'] = None
        ddp_init(self, module, detect_anomalous_params, **kwargs)

    MMDistributedDataParallel.__init__ = __init__
    _APPLIED['cpu_dist'] = True


@contextlib.contextmanager
def name_collective_timeouts(cfg) -> Iterator[None]:
    """In a multi-process run, re-raise gloo's / NCCL's timeout of a
    collective operation (``Timed out waiting 600000ms for recv ...``) as an
    error that says what happened: this rank waited longer than
    ``env_cfg.dist_cfg.timeout`` for another rank, which stopped or hangs.
    """
    try:
        yield
    except RuntimeError as e:
        text = str(e).lower()
        if not (torch.distributed.is_available()
                and torch.distributed.is_initialized()
                and ('timed out' in text or 'timeout' in text)):
            raise
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        limit = (f'env_cfg.dist_cfg.timeout = {timeout} s'
                 if timeout is not None else
                 'the default timeout (env_cfg.dist_cfg.timeout unset)')
        raise RuntimeError(
            f'rank {torch.distributed.get_rank()} of '
            f'{torch.distributed.get_world_size()} waited longer than '
            f'{limit} for the other ranks in a collective operation: a rank '
            'stopped, hangs or is far slower (look at its log); raise '
            'env_cfg.dist_cfg.timeout if it is only slow. '
            f'{type(e).__name__}: {e}') from e


def finish_distributed() -> None:
    """End a successful multi-process run: wait until every rank is done,
    then destroy the process group. Does nothing in a single process."""
    if torch.distributed.is_available() and \
            torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


_CKPT_STEP = re.compile(r'(?:iter|epoch)_(\d+)\.pth$')


def _complete_checkpoints(work_dir: str) -> List[str]:
    """Checkpoints ``iter_N.pth`` / ``epoch_N.pth`` in ``work_dir``, oldest
    first (temporary files of interrupted saves are not among them)."""
    found = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = _CKPT_STEP.search(osp.basename(path))
        if m and osp.isfile(path):
            found.append((int(m.group(1)), path))
    return [p for _, p in sorted(found)]


def _find_latest_checkpoint(path: str):
    """mmengine's ``find_latest_checkpoint`` (what ``last_checkpoint``
    names) that falls back to the newest checkpoint in the folder when that
    file is missing, and says so."""
    save_file = osp.join(path, 'last_checkpoint')
    named = None
    if osp.isfile(save_file):
        with open(save_file) as f:
            named = f.read().strip() or None
    if named is not None and not osp.isabs(named):
        named = osp.join(path, named)
    if named is not None and osp.dirname(osp.abspath(named)) != osp.abspath(
            path):
        # a work dir copied or moved from elsewhere: its last_checkpoint
        # still names the old folder's file, which may belong to another
        # run by now; this folder's own copy is the one to resume
        local = osp.join(path, osp.basename(named))
        if osp.isfile(local):
            from mmengine.logging import print_log
            print_log(
                f'{save_file} names {named}, outside this work dir; '
                f'resuming from this work dir\'s {local}',
                logger='current',
                level=logging.WARNING)
            return local
    if named is not None and osp.isfile(named):
        return named
    found = _complete_checkpoints(path)
    if named is not None:
        from mmengine.logging import print_log
        print_log(
            f'{save_file} names {named}, which does not exist; '
            + (f'resuming from {found[-1]} instead'
               if found else 'no other checkpoint found either'),
            logger='current', level=logging.WARNING)
    return found[-1] if found else None


def _save_checkpoint_with_step(self, runner, step, meta):
    """``CheckpointHook._save_checkpoint_with_step`` in a safe order: write
    the new checkpoint (atomically, see :func:`atomic_write`), then point
    ``last_checkpoint`` at it, and only then delete checkpoints beyond
    ``max_keep_ckpts``."""
    from mmengine.dist import is_main_process
    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    outdated = []
    if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0 and
                                        self.keep_ckpt_ids[-1] == step):
        # keep_ckpt_ids is a deque of maxlen max_keep_ckpts: make room
        # first, or append() would drop the oldest id unseen
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
    runner.save_checkpoint(
        self.out_dir,
        ckpt_filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)
    if not is_main_process():
        return
    atomic_write(
        str(self.last_ckpt).encode(), osp.join(runner.work_dir,
                                               'last_checkpoint'))
    for old in outdated:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(old))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed saves folders
            self.file_backend.rmtree(path)


def patch_atomic_checkpoints() -> None:
    """Make checkpoint saving safe against a kill at any moment (see the
    module docstring)."""
    if _APPLIED.get('atomic_checkpoints'):
        return
    import mmengine.runner as runner_pkg
    import mmengine.runner.checkpoint as checkpoint_mod
    import mmengine.runner.runner as runner_mod
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.hooks import CheckpointHook

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, str(filepath))

    put.__doc__ = LocalBackend.put.__doc__
    LocalBackend.put = put
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
    for module in (checkpoint_mod, runner_mod, runner_pkg):
        module.find_latest_checkpoint = _find_latest_checkpoint
    _APPLIED['atomic_checkpoints'] = True


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model it is loaded into."""


def checkpoint_fit_problems(model: torch.nn.Module,
                            state_dict: dict,
                            revise_keys=((r'^module\.', ''), )) -> List[str]:
    """What keeps ``state_dict`` from loading into ``model`` completely:
    parameters and buffers whose shapes differ, and those it lacks."""
    revised = {}
    for k, v in state_dict.items():
        for p, r in revise_keys:
            k = re.sub(p, r, k)
        revised[k] = v
    problems, missing = [], []
    for k, v in model.state_dict().items():
        if k not in revised:
            if not k.endswith('num_batches_tracked'):
                missing.append(k)
            continue
        other = revised[k]
        if hasattr(other, 'shape') and tuple(other.shape) != tuple(v.shape):
            problems.append(f'{k}: checkpoint {tuple(other.shape)}, model '
                            f'{tuple(v.shape)}')
    if missing:
        shown = ', '.join(missing[:8])
        more = f' and {len(missing) - 8} more' if len(missing) > 8 else ''
        problems.append(f'missing from the checkpoint: {shown}{more}')
    return problems


def patch_checkpoint_fit() -> None:
    """Make the Runner refuse checkpoints that do not fit its model (see
    the module docstring)."""
    if _APPLIED.get('checkpoint_fit'):
        return
    import mmengine.runner.checkpoint as checkpoint_mod
    import mmengine.runner.runner as runner_mod
    from mmengine.model import BaseTTAModel, is_model_wrapper
    from mmengine.runner import Runner

    from rfcn_mm.utils.checkpoint_file import (LOAD_ERRORS,
                                               check_checkpoint_file,
                                               explain_load_error)
    original = runner_mod._load_checkpoint_to_model
    load_checkpoint = Runner.load_checkpoint

    def _load_checkpoint_to_model(model, checkpoint, strict=False, logger=None,
                                  revise_keys=[(r'^module\.', '')]):
        state_dict = checkpoint.get('state_dict', checkpoint)
        module = model
        # mmengine's load_state_dict unwraps these too (test-time aug.)
        while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
            module = module.module
        problems = checkpoint_fit_problems(module, state_dict, revise_keys)
        if problems:
            raise CheckpointMismatchError(
                'the checkpoint does not fit the model built from the '
                'config:\n  ' + '\n  '.join(problems) + '\nCheck that the '
                'config is the one the checkpoint was trained with (e.g. '
                'num_classes, k). To start from part of a checkpoint (say, '
                'fine-tuning with another number of classes), name it in the '
                "model's init_cfg=dict(type='Pretrained', checkpoint=...) "
                'instead of load_from.')
        return original(model, checkpoint, strict, logger, revise_keys)

    def add_filename(fn):

        @functools.wraps(fn)
        def wrapped(self, filename, *args, **kwargs):
            try:
                return fn(self, filename, *args, **kwargs)
            except CheckpointMismatchError as e:
                raise CheckpointMismatchError(f'{filename}: {e}') from None

        return wrapped

    read = checkpoint_mod._load_checkpoint

    @functools.wraps(read)
    def _load_checkpoint(filename, *args, **kwargs):
        local = isinstance(filename, str) and osp.isfile(filename)
        if local:  # a text file, an ONNX model ... refused by name
            check_checkpoint_file(filename)
        try:
            return read(filename, *args, **kwargs)
        except LOAD_ERRORS as e:
            if not local:
                raise
            raise explain_load_error(filename, e) from None

    # the Runner (load_from, resume, tools/test.py) and mmengine's
    # load_checkpoint (mmdet's init_detector, DetInferencer)
    runner_mod._load_checkpoint = _load_checkpoint
    checkpoint_mod._load_checkpoint = _load_checkpoint
    runner_mod._load_checkpoint_to_model = _load_checkpoint_to_model
    Runner.load_checkpoint = add_filename(load_checkpoint)
    _APPLIED['checkpoint_fit'] = True


def patch_resume_checks() -> None:
    """Make ``Runner.resume`` refuse a checkpoint whose run the config no
    longer describes (see :mod:`rfcn_mm.engine.resume_check`)."""
    if _APPLIED.get('resume_checks'):
        return
    from mmengine.runner import Runner

    from rfcn_mm.engine.resume_check import check_resume
    resume = Runner.resume

    @functools.wraps(resume)
    def checked_resume(self, filename, *args, **kwargs):
        if isinstance(filename, str) and osp.isfile(filename):
            check_resume(self, filename)
        return resume(self, filename, *args, **kwargs)

    Runner.resume = checked_resume
    _APPLIED['resume_checks'] = True


class _RaggedArrayNumpy:
    """numpy, except that ``array`` of a list of arrays of different
    shapes is a 1-d object array (numpy < 1.24's result) instead of an
    error."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def array(obj, *args, **kwargs):
        if (not args and not kwargs and isinstance(obj, list) and obj
                and all(isinstance(x, np.ndarray) for x in obj)
                and len({x.shape for x in obj}) > 1):
            out = np.empty(len(obj), dtype=object)
            for i, x in enumerate(obj):
                out[i] = x
            return out
        return np.array(obj, *args, **kwargs)


def patch_recall_ragged_arrays() -> None:
    """Let mmdet's ``eval_recalls`` run under numpy 2 (see the module
    docstring)."""
    if _APPLIED.get('recall'):
        return
    import mmdet.evaluation.functional.recall as recall_mod
    recall_mod.np = _RaggedArrayNumpy()
    _APPLIED['recall'] = True


def register_config_scope() -> None:
    """Let mmengine resolve ``rfcn_mm::`` config bases (see the module
    docstring)."""
    if _APPLIED.get('config_scope'):
        return
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault('rfcn_mm', 'rfcn_mm')
    _APPLIED['config_scope'] = True


def apply_all() -> None:
    """Apply every fix of this module; called by ``import rfcn_mm``."""
    allow_mmengine_checkpoints()
    patch_collect_env()
    patch_package_utils()
    patch_nms_dtypes()
    patch_cpu_dist()
    patch_atomic_checkpoints()
    patch_checkpoint_fit()
    patch_resume_checks()
    patch_recall_ragged_arrays()
    register_config_scope()
