"""The train stage: ``train(config: TrainConfig, reporter) -> TrainSummary``.

Settings in :mod:`facedub.train.config` (importable without torch), dataset and augmentation
in :mod:`facedub.train.data`, losses in :mod:`facedub.train.losses`, previews in
:mod:`facedub.train.preview`, the loop in :mod:`facedub.train.loop`.
"""

from typing import Any

from facedub.train.config import MIN_FACES, PRECISIONS, AugmentConfig, Precision, TrainConfig, TrainSummary

__all__ = ["MIN_FACES", "PRECISIONS", "AugmentConfig", "Precision", "TrainConfig", "TrainSummary", "train"]


def __getattr__(name: str) -> Any:  # torch is imported only when training is asked for
    if name == "train":
        from facedub.train.loop import train

        return train
    raise AttributeError(name)
