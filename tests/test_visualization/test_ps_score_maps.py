import numpy as np
import torch
from helpers.tiny_rfcn import build_tiny, make_batch
from PIL import Image

from rfcn_mm.ops import ps_roi_pool_reference
from rfcn_mm.visualization import draw_ps_maps, ps_maps_for_roi


def test_maps_bins_and_vote_match_the_op_and_draw(tmp_path):
    model = build_tiny(k=3).eval()
    inputs, samples = make_batch(num_imgs=1, size=(128, 160))
    data = model.data_preprocessor(
        dict(inputs=list(inputs), data_samples=samples), False)
    roi = [20., 30., 100., 90.]
    res = ps_maps_for_roi(model, data, roi, label=2)
    assert res['k'] == (3, 3) and res['stride'] == 16
    assert res['maps'].shape == (9, 8, 10)
    expected = ps_roi_pool_reference(res['maps'][None],
                                     torch.tensor([[0., *roi]]), 3,
                                     1 / 16)[0, 0]
    torch.testing.assert_close(res['pooled'], expected)
    # the vote of class 2, as the detector's own forward computes it
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        out = model.roi_head._bbox_forward(feats, torch.tensor([[0., *roi]]))
    assert abs(res['vote'] - float(out['cls_score'][0, 2])) < 1e-5
    assert abs(res['score'] - float(out['cls_score'][0].softmax(0)[2])) < 1e-5
    png = draw_ps_maps(
        np.zeros((128, 160, 3), np.uint8), res, roi, 'triangle',
        str(tmp_path / 'maps.png'))
    img = Image.open(png)
    assert img.size[0] > 300 and img.size[1] > 100
