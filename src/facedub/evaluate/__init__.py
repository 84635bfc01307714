"""Quality evaluation of a swap: identity transfer, expression and pose preservation,
temporal stability and background preservation (``facedub eval``)."""

from facedub.evaluate.core import EvalConfig, EvalReport, EvalSummary, FrameRecord, evaluate

__all__ = ["EvalConfig", "EvalReport", "EvalSummary", "FrameRecord", "evaluate"]
