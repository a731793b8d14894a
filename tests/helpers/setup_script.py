"""The checkout's setup.py as a module (its functions, without running
setup())."""
import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def setup_module():
    spec = importlib.util.spec_from_file_location('rfcn_mm_setup',
                                                  osp.join(ROOT, 'setup.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
