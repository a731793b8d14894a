"""The proposals an RPN stage hands to the next R-FCN stage.

mmdet's ``DumpProposals`` writes one pickle for everything the test loop
saw, keyed ``'<parent folder>/<file name>'`` of each image, and a dataset
with ``proposal_file`` insists that the file holds exactly its own images
(it compares the counts before it filters). :func:`split_proposals` checks
that the dump covers every image of every training dataset and writes one
file per dataset; :func:`proposal_recall` measures what the next stage will
learn from: the fraction of ground-truth boxes that some proposal covers at
IoU 0.5 and 0.7 (mmdet's ``eval_recalls``).
"""
import os.path as osp
import pickle
from typing import Dict, List, Sequence, Tuple

import numpy as np

from rfcn_mm.utils.atomic_io import atomic_write


class ProposalFileError(ValueError):
    """A proposal file that is incomplete or does not match its
    dataset."""


def proposal_key(img_path: str) -> str:
    """The key ``DumpProposals`` and ``BaseDetDataset.load_proposals`` use
    for an image: its parent folder's name and its file name."""
    folder, name = osp.split(img_path)
    return osp.join(osp.basename(folder), name)


def build_leaf_datasets(leaves: Sequence[dict]) -> list:
    """The training datasets ``leaves`` (configs) built in test mode,
    without a pipeline: their image lists and annotations."""
    import copy

    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    built = []
    for leaf in leaves:
        leaf = copy.deepcopy(dict(leaf))
        leaf.pop('filter_cfg', None)
        leaf.pop('proposal_file', None)
        leaf.update(test_mode=True, pipeline=[], serialize_data=False)
        built.append(DATASETS.build(leaf))
    return built


def _infos(dataset) -> List[dict]:
    """Every image's data info (the list before any filtering)."""
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def load_proposal_dump(path: str) -> dict:
    """Read a ``DumpProposals`` pickle; a missing, truncated or foreign file
    is refused by name."""
    if not osp.isfile(path):
        raise ProposalFileError(f'proposal file not found: {path}')
    try:
        with open(path, 'rb') as f:
            dump = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError,
            ImportError) as e:
        raise ProposalFileError(
            f'{path} cannot be read as a proposal file ({type(e).__name__}: '
            f'{e}); it may be half-written') from None
    if not isinstance(dump, dict):
        raise ProposalFileError(f'{path} holds a {type(dump).__name__}, not '
                                'the dict DumpProposals writes')
    return dump


def split_proposals(dump: dict, datasets: Sequence,
                    out_paths: Sequence[str]) -> List[int]:
    """Write one proposal file per dataset, each with exactly its images.

    Args:
        dump (dict): ``DumpProposals``' content (see
            :func:`load_proposal_dump`).
        datasets (Sequence): The built training datasets.
        out_paths (Sequence[str]): One output file per dataset.

    Returns:
        list[int]: The number of images of each file.

    Raises:
        ProposalFileError: an image of a dataset has no proposals, or two
            images share a key.
    """
    counts = []
    for dataset, out in zip(datasets, out_paths):
        part: Dict[str, object] = {}
        for info in _infos(dataset):
            key = proposal_key(info['img_path'])
            if key in part:
                raise ProposalFileError(
                    f'{dataset.ann_file}: two images have the proposal key '
                    f'{key} (mmdet keys proposals by the image\'s folder and '
                    'file name)')
            if key not in dump:
                raise ProposalFileError(
                    f'the proposals lack {key} of {dataset.ann_file} '
                    f'({len(dump)} images have proposals); the dump did not '
                    'cover the training set')
            part[key] = dump[key]
        atomic_write(pickle.dumps(part, protocol=4), out)
        counts.append(len(part))
    return counts


def _gt_boxes(dataset) -> List[np.ndarray]:
    boxes = []
    for info in _infos(dataset):
        kept = [
            inst['bbox'] for inst in info.get('instances', [])
            if not inst.get('ignore_flag', 0)
        ]
        boxes.append(np.array(kept, dtype=np.float32).reshape(-1, 4))
    return boxes


def proposal_recall(dump: dict,
                    datasets: Sequence,
                    iou_thrs: Tuple[float, ...] = (0.5, 0.7),
                    num_proposals: int = 300) -> Dict[float, float]:
    """Recall of the ground-truth boxes of ``datasets`` (ignored boxes left
    out) by the top ``num_proposals`` proposals of each image, at each IoU
    of ``iou_thrs``, with mmdet's ``eval_recalls``."""
    from mmdet.evaluation.functional import eval_recalls
    gts, proposals = [], []
    for dataset in datasets:
        gts += _gt_boxes(dataset)
        for info in _infos(dataset):
            p = dump[proposal_key(info['img_path'])]
            boxes = np.asarray(p['bboxes'], dtype=np.float32).reshape(-1, 4)
            proposals.append(boxes[:num_proposals])
    if not any(len(g) for g in gts):
        return {t: float('nan') for t in iou_thrs}
    recalls = eval_recalls(
        gts, proposals, [num_proposals], list(iou_thrs), logger='silent')
    return {t: float(r) for t, r in zip(iou_thrs, recalls[0])}
