"""Console implementation of :class:`facedub.progress.Reporter`: tqdm bars on stderr."""

from __future__ import annotations

import sys
from typing import Any


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class ConsoleReporter:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bar = None

    def start(self, phase: str, total: int | None = None, unit: str = "it") -> None:
        self.close()
        if self.quiet:
            return
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=phase, unit=unit, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def advance(self, n: int = 1, **metrics: Any) -> None:
        if self._bar is None:
            return
        if metrics:
            self._bar.set_postfix({k: _fmt(v) for k, v in metrics.items()}, refresh=False)
        self._bar.update(n)

    def note(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def image(self, path: str, caption: str = "") -> None:
        if not self.quiet:
            self.note(f"{caption + ': ' if caption else ''}{path}")

    def finish(self) -> None:
        self.close()

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
