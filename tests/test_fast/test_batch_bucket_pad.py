"""BatchBucketPad."""

import pytest
import torch
from mmdet.registry import MODELS

from rfcn_mm.fast import BatchBucketPad


def test_bucket_pad_gives_few_batch_shapes():
    from mmdet.structures import DetDataSample
    pad = MODELS.build(
        dict(type='BatchBucketPad', sizes=[(1008, 608), (608, 1008)]))
    assert isinstance(pad, BatchBucketPad)
    for (h, w), want in [((600, 1000), (608, 1008)), ((608, 800), (608, 1008)),
                         ((1000, 592), (1008, 608)),
                         ((1008, 608), (1008, 608)),
                         ((1024, 608), (1024, 608))]:  # too large: kept
        inputs = torch.rand(2, 3, h, w)
        samples = [DetDataSample(metainfo=dict(img_shape=(h, w)))]
        out, samples = pad(inputs, samples)
        assert tuple(out.shape[-2:]) == want
        assert torch.equal(out[..., :h, :w], inputs)
        if want != (h, w):
            assert (out[..., h:, :] == 0).all() and (out[..., w:] == 0).all()
            assert samples[0].batch_input_shape == want
            assert samples[0].pad_shape == want
    with pytest.raises(ValueError, match='sizes must be'):
        BatchBucketPad(sizes=[(0, 10)])
