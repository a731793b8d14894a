"""rfcn_mm.datasets.make_synthetic_shapes: the one-shape classification
images that stand in for ImageNet in the studies on the synthetic data."""
import numpy as np
import pytest

from rfcn_mm.datasets import SYNTHETIC_CLASSES, make_synthetic_shapes


def test_the_images_are_seeded_and_cover_every_class():
    images, labels = make_synthetic_shapes(40, size=64, seed='a')
    assert images.shape == (40, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (40, ) and labels.dtype == np.int64
    assert set(labels.tolist()) == set(range(len(SYNTHETIC_CLASSES)))
    again, again_labels = make_synthetic_shapes(40, size=64, seed='a')
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, again_labels)
    other, _ = make_synthetic_shapes(40, size=64, seed='b')
    assert not np.array_equal(images, other)
    # the first images of a longer draw are the same images
    longer, longer_labels = make_synthetic_shapes(41, size=64, seed='a')
    np.testing.assert_array_equal(longer[:40], images)
    np.testing.assert_array_equal(longer_labels[:40], labels)


def test_bad_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match='size must be at least 52'):
        make_synthetic_shapes(1, size=40)
    with pytest.raises(ValueError, match='num must be >= 0, got -1'):
        make_synthetic_shapes(-1)
    images, labels = make_synthetic_shapes(0)
    assert images.shape == (0, 128, 128, 3) and labels.shape == (0, )
