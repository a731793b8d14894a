import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401


def _share_the_cores():
    """Under pytest-xdist, each worker's torch (and every tool a test
    starts, through OMP_NUM_THREADS) uses its share of the cores: workers
    that each use all of them slow each other down."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers <= 1:
        return
    cores = (len(os.sched_getaffinity(0))
             if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1)
    threads = max(1, cores // workers)
    torch.set_num_threads(threads)
    os.environ['OMP_NUM_THREADS'] = str(threads)


_share_the_cores()


def pytest_collection_modifyitems(config, items):
    # the long end-to-end runs first, so that under xdist the short tests
    # fill the other workers meanwhile instead of waiting behind them
    items.sort(key=lambda item: item.get_closest_marker('slow') is None)
    if os.environ.get('RFCN_LONG_TESTS') != '1':
        skip_long = pytest.mark.skip(
            reason='a study-length run (set RFCN_LONG_TESTS=1 to run it)')
        for item in items:
            if 'long' in item.keywords:
                item.add_marker(skip_long)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)
