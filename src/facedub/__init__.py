"""facedub: consent-first face replacement in video."""

__version__ = "0.1.0"
