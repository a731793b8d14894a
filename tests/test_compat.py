"""The fixes of rfcn_mm.compat, each against the failure it fixes."""
import os
import os.path as osp
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import load_checkpoint, save_checkpoint

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _runner_like_checkpoint(path):
    """A checkpoint with what mmengine's Runner writes: weights, optimizer,
    scheduler state, a message hub of HistoryBuffers with numpy arrays."""
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    hub = MessageHub.get_instance('rfcn_compat_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('iter', 7)
    ckpt = dict(
        meta=dict(iter=7, dataset_meta=dict(classes=('a', 'b'))),
        state_dict=model.state_dict(),
        optimizer=opt.state_dict(),
        message_hub=hub.state_dict(),
        param_schedulers=[dict(last_epoch=7, base_lrs=[0.1])])
    save_checkpoint(ckpt, str(path))
    return model, ckpt


def test_runner_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    model, _ = _runner_like_checkpoint(path)
    loaded = torch.load(path)  # default weights_only=True
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.statistics('mean') == pytest.approx(1.0)
    assert buf.statistics('max') == pytest.approx(1.5)
    target = nn.Linear(3, 2)
    load_checkpoint(target, str(path))
    for a, b in zip(target.parameters(), model.parameters()):
        torch.testing.assert_close(a, b)


def test_without_the_fix_torch_refuses_runner_checkpoints(tmp_path):
    """The oracle for the test above: plain torch >= 2.6 cannot load it."""
    path = tmp_path / 'ckpt.pth'
    _runner_like_checkpoint(path)
    code = f'import torch; torch.load({str(path)!r})'
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert 'Weights only load failed' in proc.stderr


class _Payload:
    """Creates a file when unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target), ))


class _SubprocessPayload:

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (subprocess.call, (['touch', self.target], ))


@pytest.mark.parametrize('payload', [_Payload, _SubprocessPayload])
def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path, payload):
    target = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    # sanity: unpickling the payload without restrictions does create it
    pickle.loads(pickle.dumps(payload(str(target)), protocol=2))
    assert target.exists()
    target.unlink()
    torch.save(
        dict(state_dict=nn.Linear(2, 2).state_dict(),
             meta=dict(x=payload(str(target)))), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    # mmengine's loader: refused by name, without the advice to load it
    # unsafely (rfcn_mm.utils.checkpoint_file)
    with pytest.raises(ValueError, match=r'evil.pth holds objects other '
                       r'than tensors .* could run code') as info:
        load_checkpoint(nn.Linear(2, 2), str(path))
    assert 'weights_only' not in str(info.value)
    assert not target.exists()


def test_restricted_getattr_refuses_other_attributes(tmp_path):

    class _Evil:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'evil.pth'
    torch.save(dict(meta=_Evil()), path, pickle_protocol=2)
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(path)


def test_broken_torchvision_does_not_crash_collect_env(tmp_path):
    fake = tmp_path / 'torchvision'
    fake.mkdir()
    (fake / '__init__.py').write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    code = ('import rfcn_mm\n'
            'from mmengine.runner.runner import collect_env\n'
            'env = collect_env()\n'
            'print(env["TorchVision"])\n')
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(tmp_path), ROOT,
             os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'unusable (RuntimeError' in proc.stdout
    # oracle: mmengine's own collect_env fails on the same torchvision
    code = ('from mmengine.utils.dl_utils import collect_env\n'
            'collect_env()\n')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          env=env)
    assert proc.returncode != 0 and 'torchvision::nms' in proc.stderr


def test_import_registers_and_has_mmcv_ops():
    import mmcv._ext  # noqa: F401
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
    _, keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
    assert keep.tolist() == [0]


def test_missing_mmcv_ops_are_reported_with_the_fix(monkeypatch):
    import builtins

    from rfcn_mm.utils import mmcv_ops
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == 'mmcv._ext':
            raise ModuleNotFoundError("No module named 'mmcv._ext'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(mmcv_ops.importlib, 'import_module',
                        lambda name: fake_import(name))
    with pytest.raises(ImportError, match='no compiled ops') as e:
        mmcv_ops.check_mmcv_ops()
    assert '--no-build-isolation' in str(e.value)


def test_finish_distributed_destroys_the_group(tmp_path):
    import torch.distributed as dist

    from rfcn_mm.compat import finish_distributed
    finish_distributed()  # no group: nothing to do
    store = dist.FileStore(str(tmp_path / 'store'), 1)
    dist.init_process_group('gloo', store=store, rank=0, world_size=1)
    try:
        finish_distributed()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
