"""PSRoIExtractor."""
import pytest
import torch

from rfcn_mm.models import PSRoIExtractor


def test_extractor_skips_the_batch_index_check_unless_asked():
    # the head's RoIs come from bbox2roi: valid by construction
    rois = torch.tensor([[3., 0., 0., 8., 8.]])
    maps = torch.randn(1, 5 * 9, 4, 4)
    default = PSRoIExtractor(dict(type='PSRoIPool', output_size=3), 5)
    assert not default.roi_layers[0].check_batch_idx
    assert (default((maps, ), rois) == 0).all()
    checked = PSRoIExtractor(
        dict(type='PSRoIAlign', output_size=3, check_batch_idx=True), 5)
    with pytest.raises(ValueError, match='do not exist'):
        checked((maps, ), rois)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_extractor_pools_reduced_precision_maps_with_float32_rois(dtype):
    from rfcn_mm.ops.reference import ps_roi_align_reference
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(1, 2 * 9, 40, 70, generator=g).to(dtype)
    # a RoI at x = 601.3..889.7 in a 1120-px image: bfloat16 would move its
    # corners by up to 4 px, float16 by up to 0.5 px
    rois = torch.tensor([[0., 601.3, 21.9, 889.7, 330.1]])
    extractor = PSRoIExtractor(
        dict(type='PSRoIAlign', output_size=3), 2, featmap_strides=[16])
    maps.requires_grad_(True)
    out = extractor((maps, ), rois)
    assert out.dtype == torch.float32
    want = ps_roi_align_reference(maps.detach().float(), rois, 3, 1 / 16)
    torch.testing.assert_close(out, want)
    lossy = ps_roi_align_reference(maps.detach().float(),
                                   rois.to(dtype).float(), 3, 1 / 16)
    assert not torch.allclose(lossy, want)  # what casting the RoIs costs
    out.sum().backward()
    assert maps.grad.dtype == dtype and maps.grad.abs().sum() > 0
