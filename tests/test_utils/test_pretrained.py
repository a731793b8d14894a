import copy

import pytest

from rfcn_mm.utils import drop_unavailable_pretrained

UNREACHABLE = 'http://127.0.0.1:9/resnet101-offline-test.pth'


def _model_cfg(checkpoint):
    init = dict(type='Pretrained', checkpoint=checkpoint)
    return dict(
        type='RFCN',
        backbone=dict(type='ResNet', init_cfg=copy.deepcopy(init)),
        roi_head=dict(
            shared_head=dict(type='ResLayer', init_cfg=copy.deepcopy(init)),
            bbox_head=dict(
                type='PSBBoxHead',
                init_cfg=[dict(type='Normal', std=0.01, layer='Conv2d')])))


def test_unreachable_weights_are_dropped_with_a_warning():
    cfg = _model_cfg(UNREACHABLE)
    with pytest.warns(UserWarning, match='random initialisation'):
        assert drop_unavailable_pretrained(cfg, timeout=2) == 2
    assert cfg['backbone']['init_cfg'] is None
    assert cfg['roi_head']['shared_head']['init_cfg'] is None
    # other initialisers are untouched
    assert cfg['roi_head']['bbox_head']['init_cfg'][0]['type'] == 'Normal'


def test_cached_or_local_weights_are_kept(tmp_path, monkeypatch):
    import torch
    hub = tmp_path / 'hub'
    (hub / 'checkpoints').mkdir(parents=True)
    (hub / 'checkpoints' / 'resnet101-offline-test.pth').write_bytes(b'x')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    cfg = _model_cfg(UNREACHABLE)
    assert drop_unavailable_pretrained(cfg, timeout=2) == 0
    local = _model_cfg(str(tmp_path / 'missing.pth'))
    assert drop_unavailable_pretrained(local, timeout=2) == 0
    assert local['backbone']['init_cfg']['checkpoint'].endswith('missing.pth')
