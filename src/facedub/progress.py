"""Progress reporting. The library never prints: it talks to a :class:`Reporter`.

The CLI implements it with progress bars, the web UI with live job state. A stage calls
``start`` once per phase, ``advance`` as it works, ``note`` for one-line messages the user
should read (a summary, a warning), ``image`` when it wrote a picture worth showing (a
preview grid, a contact sheet), and polls ``should_stop`` between units of work so that a
web UI can cancel a job.
"""

from __future__ import annotations

from typing import Any, Protocol


class Reporter(Protocol):
    def start(self, phase: str, total: int | None = None, unit: str = "it") -> None: ...

    def advance(self, n: int = 1, **metrics: Any) -> None: ...

    def note(self, message: str) -> None: ...

    def image(self, path: str, caption: str = "") -> None: ...

    def finish(self) -> None: ...

    def should_stop(self) -> bool: ...


class NullReporter:
    """Reports nowhere. The default for library calls."""

    def start(self, phase: str, total: int | None = None, unit: str = "it") -> None:
        pass

    def advance(self, n: int = 1, **metrics: Any) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def image(self, path: str, caption: str = "") -> None:
        pass

    def finish(self) -> None:
        pass

    def should_stop(self) -> bool:
        return False


class RecordingReporter(NullReporter):
    """Keeps everything it is told; used by tests and by the web UI's job state."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []
        self.done = 0
        self.metrics: dict[str, Any] = {}
        self.notes: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.stop_requested = False

    def start(self, phase: str, total: int | None = None, unit: str = "it") -> None:
        self.phases.append((phase, total))
        self.done = 0

    def advance(self, n: int = 1, **metrics: Any) -> None:
        self.done += n
        self.metrics.update(metrics)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def image(self, path: str, caption: str = "") -> None:
        self.images.append((path, caption))

    def should_stop(self) -> bool:
        return self.stop_requested
