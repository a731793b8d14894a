"""Merging an RPN stage and an R-FCN stage: key by key against the two
inputs, the shared-layer check, and refusals by name."""
import pytest
import torch

from rfcn_mm.engine.alternating import (SharedLayersDifferError,
                                        merge_stage_checkpoints,
                                        shared_layers_difference)


def _save(path, state, **meta):
    torch.save(dict(state_dict=state, meta=meta), path)
    return str(path)


@pytest.fixture
def stages(tmp_path):
    g = torch.Generator().manual_seed(0)
    backbone = {
        'backbone.conv1.weight': torch.randn(4, 3, 3, 3, generator=g),
        'backbone.bn1.running_mean': torch.randn(4, generator=g),
    }
    rpn = dict(backbone)
    rpn.update({
        'bbox_head.rpn_conv.weight': torch.randn(8, 4, 3, 3, generator=g),
        'bbox_head.rpn_cls.bias': torch.randn(3, generator=g),
    })
    rfcn = dict(backbone)
    rfcn.update({
        'roi_head.bbox_head.conv_cls.weight': torch.randn(5, 8, 1, 1,
                                                          generator=g),
    })
    return (_save(tmp_path / 'rpn.pth', rpn),
            _save(tmp_path / 'rfcn.pth', rfcn,
                  dataset_meta=dict(classes=('a', 'b'))), rpn, rfcn)


def test_the_merge_is_the_rfcn_plus_the_renamed_rpn_head(stages, tmp_path):
    rpn_path, rfcn_path, rpn, rfcn = stages
    out = tmp_path / 'final.pth'
    merge_stage_checkpoints(rpn_path, rfcn_path, str(out))
    ckpt = torch.load(out, weights_only=True)
    state = ckpt['state_dict']
    assert sorted(state) == sorted([
        'backbone.conv1.weight', 'backbone.bn1.running_mean',
        'rpn_head.rpn_conv.weight', 'rpn_head.rpn_cls.bias',
        'roi_head.bbox_head.conv_cls.weight'
    ])
    assert torch.equal(state['rpn_head.rpn_conv.weight'],
                       rpn['bbox_head.rpn_conv.weight'])
    assert torch.equal(state['roi_head.bbox_head.conv_cls.weight'],
                       rfcn['roi_head.bbox_head.conv_cls.weight'])
    assert ckpt['meta']['dataset_meta'] == dict(classes=('a', 'b'))
    assert ckpt['meta']['merged_from']['rpn'].endswith('rpn.pth')


def test_an_init_merge_leaves_the_rpn_head_out(stages, tmp_path):
    rpn_path, rfcn_path, rpn, _ = stages
    rpn['backbone.conv1.weight'] = rpn['backbone.conv1.weight'] + 1
    _save(rpn_path, rpn)
    out = tmp_path / 'init.pth'
    state = merge_stage_checkpoints(
        rpn_path, rfcn_path, str(out), keep_rpn_head=False,
        require_shared=False)
    assert not any(k.startswith('rpn_head') for k in state)
    # the backbone is the RPN's
    assert torch.equal(state['backbone.conv1.weight'],
                       rpn['backbone.conv1.weight'])


def test_shared_layers_must_agree_in_every_bit(stages, tmp_path):
    rpn_path, rfcn_path, rpn, rfcn = stages
    assert shared_layers_difference(rpn, rfcn) is None
    mean = rpn['backbone.bn1.running_mean'].clone()
    mean[0] = torch.nextafter(mean[0], torch.tensor(10.))  # one ulp
    rpn['backbone.bn1.running_mean'] = mean
    assert shared_layers_difference(rpn, rfcn) == 'backbone.bn1.running_mean'
    _save(rpn_path, rpn)
    out = tmp_path / 'final.pth'
    with pytest.raises(SharedLayersDifferError,
                       match='backbone.bn1.running_mean differs'):
        merge_stage_checkpoints(rpn_path, rfcn_path, str(out))
    assert not out.exists()


def test_swapped_inputs_are_refused_by_name(stages, tmp_path):
    rpn_path, rfcn_path, _, _ = stages
    with pytest.raises(KeyError, match='not the checkpoint of an RPN stage'):
        merge_stage_checkpoints(rfcn_path, rfcn_path, str(tmp_path / 'o'))
    with pytest.raises(KeyError, match='not the checkpoint of an R-FCN'):
        merge_stage_checkpoints(rpn_path, rpn_path, str(tmp_path / 'o'))
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(Exception, match='notes.pth'):
        merge_stage_checkpoints(str(text), rfcn_path, str(tmp_path / 'o'))
