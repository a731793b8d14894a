from mmdet.models.dense_heads import RPNHead
from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Check that the detection head has exactly one class per dataset
    class before each loop starts.

    A head with fewer classes trains until a batch holds a label beyond
    them and then fails inside the loss (``Target 3 is out of bounds``); a
    head with more trains and evaluates classes that never occur. mmdet's
    ``NumClassCheckHook`` checks with ``assert`` and only for training and
    validation; this one raises ``ValueError`` naming the config keys, for
    the training, validation and test datasets alike.
    """

    priority = 'VERY_HIGH'

    def _check(self, runner, mode: str) -> None:
        loader = getattr(runner, f'{mode}_dataloader')
        dataset = getattr(loader, 'dataset', None)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if classes is None:
            return
        if isinstance(classes, str):
            raise ValueError(
                f'{mode}_dataloader.dataset: metainfo classes must be a '
                f'tuple of names, got the string {classes!r} (write '
                f"('{classes}', ) for one class)")
        model = getattr(runner.model, 'module', runner.model)
        for name, module in model.named_modules():
            num = getattr(module, 'num_classes', None)
            # an RPN's one class is "object" (mmdet's RPN detector keeps
            # its RPNHead as bbox_head)
            if not isinstance(num, int) or 'rpn_head' in name or \
                    isinstance(module, RPNHead) or num == len(classes):
                continue
            raise ValueError(
                f'model.{name}.num_classes is {num} but {mode}_dataloader.'
                f'dataset ({type(dataset).__name__}) has {len(classes)} '
                f'classes {tuple(classes)}: set model.{name}.num_classes='
                f'{len(classes)}')

    def before_train(self, runner) -> None:
        self._check(runner, 'train')

    def before_val(self, runner) -> None:
        self._check(runner, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, 'test')
