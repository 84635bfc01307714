"""The train stage: ``train(config: TrainConfig, reporter) -> TrainSummary``.

Dataset and augmentation in :mod:`facedub.train.data`, losses in :mod:`facedub.train.losses`,
previews in :mod:`facedub.train.preview`, the loop in :mod:`facedub.train.loop`.
"""

from facedub.train.config import PRECISIONS, Precision, TrainConfig, TrainSummary
from facedub.train.data import MIN_FACES, AugmentConfig
from facedub.train.loop import train

__all__ = ["MIN_FACES", "PRECISIONS", "AugmentConfig", "Precision", "TrainConfig", "TrainSummary", "train"]
