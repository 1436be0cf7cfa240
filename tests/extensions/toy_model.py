"""A third model for the tests, added the way a user extends the study (mmjsd.core.extensions):

    extensions: [tests/extensions/toy_model.py]
    models: [mmjsd, mmpoe, toy]
"""

from mmjsd.core import extensions
from mmjsd.models.mmpoe import MMPoE


class ToyPoE(MMPoE):
    """mmPoE's objective under another name: enough to plan, train and evaluate a third model."""


def register() -> None:
    extensions.register_model("toy", ToyPoE)
