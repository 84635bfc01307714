"""Convert: swap the target person's face in a video (or image) with a trained model.

Pure building blocks (``color``, ``mask``, ``blend``, ``smoothing``) and the streaming
``pipeline``. Stage functions: :func:`convert_video` and :func:`convert_preview`.
"""

from facedub.convert.config import BLEND_MODES, COLOR_MODES, MASK_MODES, SMOOTH_MODES, ConvertConfig
from facedub.convert.pipeline import ConvertSummary, PreviewResult, convert_frame, convert_preview, convert_video

__all__ = [
    "BLEND_MODES",
    "COLOR_MODES",
    "MASK_MODES",
    "SMOOTH_MODES",
    "ConvertConfig",
    "ConvertSummary",
    "PreviewResult",
    "convert_frame",
    "convert_preview",
    "convert_video",
]
