"""--cfg-options key checks (rfcn_mm.utils.config.check_override_keys)."""
import os.path as osp

import pytest
from mmengine.config import Config

from rfcn_mm.utils.config import check_override_keys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAIN = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py')


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(MAIN)


@pytest.mark.parametrize(
    'key',
    [
        'model.train_cfg.rcnn.pos_weight',  # an existing leaf
        'model.train_cfg.brand_new_flag',  # a new leaf under an existing dict
        'model.test_cfg.rcnn.max_per_img',
    ])
def test_existing_and_new_leaves_pass(cfg, key):
    check_override_keys(cfg, [key])


@pytest.mark.parametrize('key,message', [
    ('model.train_cfg.rcnn.pos_weigth',
     'did you mean "model.train_cfg.rcnn.pos_weight"'),
    ('model.train_cfg.rpn_proposl.nms_pre', '"model.train_cfg.rpn_proposl" is '
     'not a key'),
    ('optim_wrapper.optimizer.lrr',
     'did you mean "optim_wrapper.optimizer.lr"'),
])
def test_typos_are_named(cfg, key, message):
    with pytest.raises(KeyError) as err:
        check_override_keys(cfg, [key])
    assert message in str(err.value)
