"""A head whose class count differs from the dataset's is refused before
any loop starts, naming the config key."""
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmdet.registry import HOOKS


class _Head(nn.Module):

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes


class _Detector(nn.Module):

    def __init__(self, num_classes):
        super().__init__()
        self.rpn_head = _Head(1)  # the RPN's one class is not checked
        self.roi_head = nn.Module()
        self.roi_head.bbox_head = _Head(num_classes)


def _runner(num_classes, classes, mode='train'):
    loader = SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(
        classes=classes)))
    return SimpleNamespace(model=_Detector(num_classes),
                           **{f'{mode}_dataloader': loader})


@pytest.mark.parametrize('mode', ['train', 'val', 'test'])
@pytest.mark.parametrize('num_classes', [3, 5])
def test_fewer_or_more_classes_than_the_dataset_are_refused(
        mode, num_classes):
    hook = HOOKS.build(dict(type='NumClassesCheckHook'))
    with pytest.raises(ValueError) as err:
        getattr(hook, f'before_{mode}')(_runner(num_classes, tuple('abcd'),
                                                mode))
    msg = str(err.value)
    assert f'model.roi_head.bbox_head.num_classes is {num_classes}' in msg
    assert f'{mode}_dataloader.dataset' in msg and 'has 4 classes' in msg
    assert 'num_classes=4' in msg


def test_matching_classes_pass_and_a_string_is_refused():
    hook = HOOKS.build(dict(type='NumClassesCheckHook'))
    hook.before_train(_runner(4, tuple('abcd')))
    runner = _runner(1, 'cat')
    with pytest.raises(ValueError, match=r"\('cat', \)"):
        hook.before_train(runner)
