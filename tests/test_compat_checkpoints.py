"""compat's checkpoint fixes: writes that a kill cannot truncate, and
checkpoints that do not fit the model refused by name."""
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn

from rfcn_mm import compat


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'sub' / 'a.bin'
    compat.atomic_write(b'old', str(path))
    compat.atomic_write(b'new contents', str(path))
    assert path.read_bytes() == b'new contents'
    assert os.listdir(path.parent) == ['a.bin']


def test_atomic_write_interrupted_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'a.bin'
    compat.atomic_write(b'old', str(path))

    def fail(*args):
        raise KeyboardInterrupt  # as if killed between write and rename

    monkeypatch.setattr(os, 'replace', fail)
    with pytest.raises(KeyboardInterrupt):
        compat.atomic_write(b'new', str(path))
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['a.bin']


def test_mmengine_local_backend_writes_atomically(tmp_path, monkeypatch):
    from mmengine.fileio.backends.local_backend import LocalBackend
    seen = []
    real = os.replace
    monkeypatch.setattr(os, 'replace',
                        lambda a, b: (seen.append((a, b)), real(a, b)))
    LocalBackend().put(b'xyz', str(tmp_path / 'ckpt.pth'))
    assert (tmp_path / 'ckpt.pth').read_bytes() == b'xyz'
    assert len(seen) == 1 and seen[0][1] == str(tmp_path / 'ckpt.pth')


class _Net(nn.Module):

    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3)
        self.cls = nn.Linear(8, classes)
        self.bn = nn.BatchNorm2d(8)


def test_fit_problems_name_shapes_and_missing_keys():
    model = _Net(4)
    assert compat.checkpoint_fit_problems(model, _Net(4).state_dict()) == []
    # 'module.' prefixes (DDP) are stripped as mmengine does
    wrapped = {f'module.{k}': v for k, v in _Net(4).state_dict().items()}
    assert compat.checkpoint_fit_problems(model, wrapped) == []
    other = _Net(6).state_dict()
    del other['body.bias']
    del other['bn.num_batches_tracked']  # old BN checkpoints lack it
    problems = compat.checkpoint_fit_problems(model, other)
    assert problems == [
        'cls.weight: checkpoint (6, 8), model (4, 8)',
        'cls.bias: checkpoint (6,), model (4,)',
        'missing from the checkpoint: body.bias'
    ]


def test_runner_loading_refuses_a_checkpoint_that_does_not_fit(tmp_path):
    import mmengine.runner.runner as runner_mod
    ckpt = {'state_dict': _Net(6).state_dict(), 'meta': {}}
    with pytest.raises(ValueError, match=r'cls.weight: checkpoint \(6, 8\), '
                       r'model \(4, 8\)'):
        runner_mod._load_checkpoint_to_model(_Net(4), ckpt)
    model = _Net(4)
    runner_mod._load_checkpoint_to_model(model, {'state_dict': _Net(4)
                                                 .state_dict()})
    path = tmp_path / 'c.pth'
    torch.save(ckpt, path)

    class FakeRunner:
        model = _Net(4)

        def call_hook(self, *a, **k):
            pass

    from mmengine.runner import Runner
    fake = FakeRunner()
    fake.logger = None
    with pytest.raises(ValueError, match=f'{osp.basename(path)}: the '
                       'checkpoint does not fit'):
        Runner.load_checkpoint(fake, str(path))


def test_runner_names_a_truncated_checkpoint(tmp_path):
    import mmengine.runner.runner as runner_mod
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': _Net(4).state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r'iter_4.pth is not a checkpoint: '
                       r'it is a damaged zip archive \(a truncated'):
        runner_mod._load_checkpoint(str(path), map_location='cpu')


def test_fit_is_checked_through_a_test_time_augmentation_wrapper():
    import mmengine.runner.runner as runner_mod
    from mmengine.model import BaseTTAModel

    class TTA(BaseTTAModel):

        def merge_preds(self, data_samples_list):
            return data_samples_list

    class Detector(_Net):

        def test_step(self, data):
            return data

    tta = TTA(module=Detector(4))
    runner_mod._load_checkpoint_to_model(tta, {'state_dict': _Net(4)
                                               .state_dict()})
    with pytest.raises(ValueError, match=r'cls.weight: checkpoint \(6, 8\)'):
        runner_mod._load_checkpoint_to_model(
            tta, {'state_dict': _Net(6).state_dict()})
