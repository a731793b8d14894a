"""Detection of an mmcv installed without its compiled ops."""
import importlib

FIX = ('mmcv 2.1.0 must be built with its ops against the installed torch: '
       'pip uninstall -y mmcv && pip install "setuptools<82" wheel && '
       'pip install --no-build-isolation --no-binary mmcv mmcv==2.1.0 '
       '(about 20 minutes on 2 cores), or run `bash tools/bootstrap.sh test`'
       ' which does this for you.')


def check_mmcv_ops() -> None:
    """Raise ImportError with the fix when ``mmcv._ext`` is missing.

    pip "successfully" installs mmcv 2.1.0 without ops when its build could
    not see torch (build isolation); mmdet then fails deep inside on the
    first op. This check fails early and says what to do.
    """
    try:
        import mmcv
    except ImportError as e:
        raise ImportError(f'mmcv is not installed. {FIX}') from e
    try:
        ext = importlib.import_module('mmcv._ext')
    except ImportError as e:
        raise ImportError(
            f'mmcv {mmcv.__version__} at {mmcv.__path__[0]} has no compiled '
            f'ops (mmcv._ext: {e}). {FIX}') from e
    if not hasattr(ext, 'nms'):
        raise ImportError(f'mmcv._ext at {ext.__file__} lacks nms. {FIX}')
