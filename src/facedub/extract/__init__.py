"""The extract stage: videos and images → a faceset of aligned face crops.

``extract_faceset(inputs, out, config, reporter) -> ExtractSummary``.
"""

from facedub.extract.config import ExtractConfig, RejectReason
from facedub.extract.pipeline import extract_faceset, faceset_id
from facedub.extract.summary import ExtractSummary

__all__ = ["ExtractConfig", "ExtractSummary", "RejectReason", "extract_faceset", "faceset_id"]
