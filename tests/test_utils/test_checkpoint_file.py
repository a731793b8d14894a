"""rfcn_mm.utils.checkpoint_file: what is not a checkpoint is refused by
name (the file and what it is), never with torch's advice to load it
unsafely."""
import os.path as osp

import pytest
import torch

from rfcn_mm.utils.checkpoint_file import (CheckpointFileError,
                                           load_checkpoint_file)


class NotAllowed:
    pass


def _onnx_file(path):
    onnx = pytest.importorskip('onnx')
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g',
                              [helper.make_tensor_value_info(
                                  'x', TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(
                                  'y', TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, producer_name='pytorch'), path)


def _pt2_file(path):
    program = torch.export.export(torch.nn.ReLU(), (torch.ones(2), ))
    torch.export.save(program, path)


def test_a_checkpoint_loads(tmp_path):
    path = str(tmp_path / 'ok.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=dict(iter=3)),
               path)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta'] == dict(iter=3)
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))


@pytest.mark.parametrize(
    'make, what',
    [(lambda p: open(p, 'w').write('lr = 0.01\n'),
      r'is not a checkpoint: it is a text file \(it starts "lr = 0.01"\)'),
     (lambda p: open(p, 'wb').close(), 'is not a checkpoint: it is an empty'),
     (_onnx_file, 'is not a checkpoint: it is an ONNX model'),
     (_pt2_file, 'is not a checkpoint: it is a torch.export program'),
     (lambda p: open(p, 'wb').write(b'\x89PNG\r\n\x1a\n' + bytes(64)),
      'is not a checkpoint: it is an image')],
    ids=['text', 'empty', 'onnx', 'pt2', 'png'])
def test_files_that_are_not_checkpoints_are_named(tmp_path, make, what):
    path = str(tmp_path / 'model.pth')
    make(path)
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(path)
    assert str(info.value).startswith(path)
    assert info.value.args[0] == str(info.value)
    import re
    assert re.search(what, str(info.value)), str(info.value)


def test_a_truncated_checkpoint_is_named(tmp_path):
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(1000))), good)
    path = str(tmp_path / 'cut.pth')
    with open(good, 'rb') as f, open(path, 'wb') as g:
        g.write(f.read()[:osp.getsize(good) // 2])
    with pytest.raises(CheckpointFileError,
                       match=r'cut.pth is not a checkpoint: it is a damaged'):
        load_checkpoint_file(path)


def test_unsafe_content_is_refused_without_advice_to_load_it_anyway(
        tmp_path):
    path = str(tmp_path / 'pickled.pth')
    torch.save(dict(state_dict=dict(obj=NotAllowed())), path)
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert message.startswith(path)
    assert 'NotAllowed' in message and 'could run code' in message
    assert 'weights_only' not in message


def test_content_that_is_no_dict_is_refused(tmp_path):
    path = str(tmp_path / 'tensor.pth')
    torch.save(torch.ones(3), path)
    with pytest.raises(CheckpointFileError, match='holds a Tensor, not a'):
        load_checkpoint_file(path)


def test_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


def test_the_runner_and_init_detector_refuse_by_name_too(tmp_path):
    """mmengine's readers (Runner: load_from, resume, tools/test.py;
    load_checkpoint: mmdet's init_detector and DetInferencer) go through
    the same check."""
    from mmengine.runner.checkpoint import load_checkpoint

    import rfcn_mm  # noqa: F401  (applies the fix)
    path = str(tmp_path / 'notes.pth')
    with open(path, 'w') as f:
        f.write('not weights\n')
    with pytest.raises(CheckpointFileError, match='it is a text file'):
        load_checkpoint(torch.nn.Linear(1, 1), path)
    from mmengine.runner import runner as runner_mod
    with pytest.raises(CheckpointFileError, match='it is a text file'):
        runner_mod._load_checkpoint(path, map_location='cpu')
