"""The exception hierarchy. Exit codes are mapped once, in :mod:`facedub.cli`.

Every user mistake raises a :class:`FacedubError` subclass whose message is one plain line
naming the file and the problem; the CLI prints it without a traceback.
"""

from __future__ import annotations


class FacedubError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 3


class BadInput(FacedubError):
    """A missing, unreadable, corrupt or unsuitable input, or a bad option value."""

    exit_code = 2


class ModelMismatch(BadInput):
    """A model or checkpoint that does not fit what was asked (architecture, faceset)."""


class ContentRefused(FacedubError):
    """The content gate refused an input (sexually explicit material)."""

    exit_code = 1


class ConsentMissing(FacedubError):
    """An identity has no valid, unexpired consent record."""

    exit_code = 1


class Cancelled(FacedubError):
    """The user stopped the work (Ctrl-C, or Cancel in the web UI)."""

    exit_code = 130
