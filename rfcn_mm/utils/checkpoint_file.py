"""Reading a checkpoint file with errors that name the file and say what it
is when it is not a checkpoint.

``torch.load`` answers a text file with ``KeyError: 101``, an ONNX model
with an ``UnpicklingError`` that advises ``weights_only=False`` (which would
run whatever code the file holds), a truncated file with a zip-reader
error. :func:`load_checkpoint_file` looks at the file first and refuses
what is not a checkpoint by name; what torch still cannot read is reported
with the file's name and without that advice.
"""
import os.path as osp
import pickle
import re
import zipfile
from typing import Optional


class CheckpointFileError(ValueError):
    """A file given as a checkpoint that is not one, or cannot be read."""


def _zip_kind(path: str) -> Optional[str]:
    """What a zip archive is: None for ``torch.save``'s format."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return ('a damaged zip archive (a truncated or partly written '
                'checkpoint?)')
    if any(n.endswith('/data.pkl') or n == 'data.pkl' for n in names):
        return None
    if any(n.endswith('archive_format') or '/models/' in n
           or n.startswith('models/') for n in names):
        return ('a torch.export program (.pt2, tools/deployment/export.py\'s '
                'output)')
    return 'a zip archive that torch.save did not write'


def describe_non_checkpoint(path: str) -> Optional[str]:
    """What ``path`` is when its content shows it is not a checkpoint
    written by ``torch.save``, or None when it may be one."""
    size = osp.getsize(path)
    if size == 0:
        return 'an empty file'
    with open(path, 'rb') as f:
        head = f.read(4096)
    if head.startswith(b'PK\x03\x04'):
        return _zip_kind(path)
    if head[:1] == b'\x80':  # pickle protocol 2+: torch's legacy format
        return None
    if head.startswith(b'\x89PNG') or head.startswith(b'\xff\xd8\xff'):
        return 'an image'
    if head.startswith(b'\x08') and (b'pytorch' in head or b'onnx' in head
                                     or b'\x12' in head[:4]):
        return 'an ONNX model (tools/deployment/export.py\'s output)'
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in '\r\n\t'
                                for c in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ''
        return f'a text file (it starts "{first}")'
    return 'not a file torch.save wrote'


def check_checkpoint_file(path: str) -> None:
    """Refuse, by name, a ``path`` that is missing or whose content shows
    it is not a checkpoint (see :func:`describe_non_checkpoint`)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    what = describe_non_checkpoint(path)
    if what is not None:
        raise CheckpointFileError(f'{path} is not a checkpoint: it is {what}')


def explain_load_error(path: str, error: BaseException) -> CheckpointFileError:
    """The error to raise when ``torch.load`` failed on ``path`` with
    ``error``: the file named, and no advice to load it unsafely."""
    if isinstance(error, pickle.UnpicklingError):
        found = re.search(r'Unsupported global: GLOBAL (\S+)', str(error))
        what = f' ({found.group(1)})' if found else ''
        return CheckpointFileError(
            f'{path} holds objects other than tensors and mmengine\'s '
            f'training state{what}, which rfcn_mm does not load: loading '
            'them could run code from the file. Save the state_dict of a '
            'model trained with mmengine (tools/train.py writes such '
            'checkpoints)')
    return CheckpointFileError(
        f'{path} cannot be read as a checkpoint (truncated or damaged?): '
        f'{type(error).__name__}: {error}')


# what torch.load raises for files it cannot read
LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, KeyError,
               ValueError, OSError)


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Load a checkpoint (``torch.save``'s format, loaded weights-only with
    the types rfcn_mm allows, see :mod:`rfcn_mm.compat`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointFileError: it is not a checkpoint (named: empty, text,
            ONNX, a pt2 program, an image ...) or cannot be read; the
            message names the file.
    """
    check_checkpoint_file(path)
    import torch
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except LOAD_ERRORS as e:
        raise explain_load_error(path, e) from None
    if not isinstance(ckpt, dict):
        raise CheckpointFileError(
            f'{path} holds a {type(ckpt).__name__}, not a checkpoint (a dict '
            'with a state_dict, or a state_dict)')
    return ckpt
