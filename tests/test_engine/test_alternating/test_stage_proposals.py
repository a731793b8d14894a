"""Proposal files between stages: split per dataset with every image
covered, half-written files refused, and the recall against boxes whose
IoUs are worked out by hand."""
import pickle

import numpy as np
import pytest
from mmengine.structures import InstanceData

from rfcn_mm.engine.alternating import ProposalFileError, split_proposals
from rfcn_mm.engine.alternating.stage_proposals import (load_proposal_dump,
                                                        proposal_key,
                                                        proposal_recall)


class _Dataset:
    """What the functions read of an mmdet dataset."""

    def __init__(self, ann_file, infos):
        self.ann_file, self.infos = ann_file, infos

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        return self.infos[i]


def _info(path, *boxes, ignored=()):
    instances = [dict(bbox=list(b), ignore_flag=0) for b in boxes]
    instances += [dict(bbox=list(b), ignore_flag=1) for b in ignored]
    return dict(img_path=path, instances=instances)


def _proposals(*boxes):
    p = InstanceData()
    p.bboxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    p.scores = np.linspace(1, 0.5, len(boxes)).astype(np.float32)
    return p


def test_the_key_is_mmdets():
    assert proposal_key('/d/VOC2007/JPEGImages/000005.jpg') == \
        'JPEGImages/000005.jpg'


def test_split_writes_each_dataset_exactly_its_images(tmp_path):
    a = _Dataset('a.txt', [_info('/r/A/JPEGImages/1.jpg')])
    b = _Dataset('b.txt', [_info('/r/B/Images/2.jpg'),
                           _info('/r/B/Images/3.jpg')])
    dump = {
        'JPEGImages/1.jpg': _proposals([0, 0, 4, 4]),
        'Images/2.jpg': _proposals([1, 1, 5, 5]),
        'Images/3.jpg': _proposals(),
    }
    paths = [str(tmp_path / 'a.pkl'), str(tmp_path / 'b.pkl')]
    assert split_proposals(dump, [a, b], paths) == [1, 2]
    with open(paths[1], 'rb') as f:
        part = pickle.load(f)
    assert sorted(part) == ['Images/2.jpg', 'Images/3.jpg']
    np.testing.assert_array_equal(part['Images/2.jpg'].bboxes,
                                  [[1, 1, 5, 5]])


def test_an_image_without_proposals_is_named(tmp_path):
    a = _Dataset('a.txt', [_info('/r/A/JPEGImages/1.jpg'),
                           _info('/r/A/JPEGImages/7.jpg')])
    with pytest.raises(ProposalFileError,
                       match='lack JPEGImages/7.jpg of a.txt'):
        split_proposals({'JPEGImages/1.jpg': _proposals()}, [a],
                        [str(tmp_path / 'a.pkl')])
    assert not (tmp_path / 'a.pkl').exists()


def test_half_written_and_foreign_files_are_refused(tmp_path):
    whole = pickle.dumps({'JPEGImages/1.jpg': _proposals([0, 0, 1, 1])})
    path = tmp_path / 'p.pkl'
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ProposalFileError, match='half-written'):
        load_proposal_dump(str(path))
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ProposalFileError, match='holds a list'):
        load_proposal_dump(str(path))
    with pytest.raises(ProposalFileError, match='not found'):
        load_proposal_dump(str(tmp_path / 'missing.pkl'))


def test_recall_against_hand_computed_ious():
    """Ground truth [0,0,10,10] (area 100). Proposal [0,0,10,8]: IoU 0.8;
    [0,0,10,6]: IoU 0.6; [20,20,30,30]: 0. Image 1's box is covered at
    0.5 and 0.7, image 2's at 0.5 only, image 3's not at all; image 2's
    ignored box does not count."""
    gt = [0, 0, 10, 10]
    data = _Dataset('a.txt', [
        _info('/r/I/1.jpg', gt),
        _info('/r/I/2.jpg', gt, ignored=[[50, 50, 60, 60]]),
        _info('/r/I/3.jpg', gt),
    ])
    dump = {
        'I/1.jpg': _proposals([0, 0, 10, 8], [20, 20, 30, 30]),
        'I/2.jpg': _proposals([0, 0, 10, 6]),
        'I/3.jpg': _proposals([20, 20, 30, 30]),
    }
    recall = proposal_recall(dump, [data], num_proposals=300)
    assert recall[0.5] == pytest.approx(2 / 3)
    assert recall[0.7] == pytest.approx(1 / 3)
    # only the top proposal of image 1 counts with num_proposals=1 ...
    dump['I/1.jpg'] = _proposals([20, 20, 30, 30], [0, 0, 10, 8])
    assert proposal_recall(dump, [data], num_proposals=1)[0.5] == \
        pytest.approx(1 / 3)
