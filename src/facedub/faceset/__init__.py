"""Facesets: aligned face crops (``faces/*.png``) plus ``faceset.json``.

See :mod:`facedub.faceset.schema` for the record types and :mod:`facedub.faceset.store` for
reading and writing them.
"""

from facedub.faceset.schema import SCHEMA_VERSION, FaceRecord, Faceset, SourceRecord
from facedub.faceset.store import FACESET_JSON, load_faceset, save_faceset

__all__ = [
    "SCHEMA_VERSION",
    "FaceRecord",
    "Faceset",
    "SourceRecord",
    "FACESET_JSON",
    "load_faceset",
    "save_faceset",
]
