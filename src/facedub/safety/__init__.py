"""Safety and provenance: content gate, consent records, watermark, label, provenance, verify.

Stages go through :mod:`facedub.safety.policy` only: it is the single decision point.
"""
