import copy

import pytest

from rfcn_mm.utils import check_pretrained

UNREACHABLE = 'http://127.0.0.1:9/resnet101-offline-test.pth'


def _model_cfg(checkpoint):
    init = dict(type='Pretrained', checkpoint=checkpoint)
    norm = dict(type='BN', requires_grad=False)
    return dict(
        type='RFCN',
        backbone=dict(
            type='ResNet',
            frozen_stages=1,
            norm_eval=True,
            norm_cfg=dict(norm),
            init_cfg=copy.deepcopy(init)),
        roi_head=dict(
            shared_head=dict(
                type='ResLayer',
                norm_eval=True,
                norm_cfg=dict(norm),
                init_cfg=copy.deepcopy(init)),
            bbox_head=dict(
                type='PSBBoxHead',
                init_cfg=[dict(type='Normal', std=0.01, layer='Conv2d')])))


def test_unreachable_weights_stop_with_the_url_the_place_and_the_option(
        tmp_path, monkeypatch):
    import torch
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    cfg = _model_cfg(UNREACHABLE)
    with pytest.raises(FileNotFoundError) as err:
        check_pretrained(cfg, timeout=2)
    msg = str(err.value)
    assert 'model.backbone.init_cfg.checkpoint = ' + UNREACHABLE in msg
    assert 'model.roi_head.shared_head.init_cfg.checkpoint' in msg
    assert str(tmp_path / 'checkpoints' / 'resnet101-offline-test.pth') in msg
    assert '--from-scratch' in msg
    # nothing was changed
    assert cfg == _model_cfg(UNREACHABLE)


def test_from_scratch_drops_the_weights_and_unfreezes_what_they_froze():
    cfg = _model_cfg(UNREACHABLE)
    assert check_pretrained(cfg, from_scratch=True) == 2
    backbone, shared = cfg['backbone'], cfg['roi_head']['shared_head']
    assert backbone['init_cfg'] is None and shared['init_cfg'] is None
    assert backbone['frozen_stages'] == -1
    assert backbone['norm_eval'] is False and shared['norm_eval'] is False
    assert backbone['norm_cfg']['requires_grad'] is True
    assert shared['norm_cfg']['requires_grad'] is True
    # other initialisers are untouched
    assert cfg['roi_head']['bbox_head']['init_cfg'][0]['type'] == 'Normal'


def test_cached_weights_pass_and_missing_local_files_are_named(
        tmp_path, monkeypatch):
    import torch
    hub = tmp_path / 'hub'
    (hub / 'checkpoints').mkdir(parents=True)
    (hub / 'checkpoints' / 'resnet101-offline-test.pth').write_bytes(b'x')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    assert check_pretrained(_model_cfg(UNREACHABLE), timeout=2) == 0
    local = tmp_path / 'r101.pth'
    local.write_bytes(b'x')
    assert check_pretrained(_model_cfg(str(local))) == 0
    with pytest.raises(FileNotFoundError, match='missing.pth: file not found'):
        check_pretrained(_model_cfg(str(tmp_path / 'missing.pth')))
