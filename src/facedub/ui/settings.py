"""What the server lets a visitor do: typed local paths, and how much each project may hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from facedub.errors import BadInput

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
DEFAULT_PROJECT_QUOTA = "20gb"


def parse_size(text: str | int, what: str = "size") -> int:
    """``"500mb"``, ``"4gb"``, ``"1024"`` → bytes (powers of 1024). BadInput otherwise."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise BadInput(f"{what} {text!r}: not a size (e.g. 500mb, 20gb)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


@dataclass(frozen=True)
class UiSettings:
    # Folders whose files may be typed as "a path on this computer". None: any path (the
    # default on 127.0.0.1); (): the box is off (the default when the app is shared).
    local_paths: tuple[str, ...] | None = None
    project_quota: int | None = parse_size(DEFAULT_PROJECT_QUOTA)  # bytes of uploads per project; None: no limit

    def __post_init__(self) -> None:
        if self.project_quota is not None and self.project_quota <= 0:
            raise BadInput(f"project quota must be more than 0 bytes, got {self.project_quota}")

    @property
    def paths_enabled(self) -> bool:
        return self.local_paths is None or len(self.local_paths) > 0

    def check_local_path(self, text: str) -> str:
        """The typed path when it may be used; BadInput naming it otherwise."""
        if self.local_paths is None:
            return text
        if not self.local_paths:
            raise BadInput(f"{text}: typing a path on this computer is off for this server; upload the file instead")
        try:
            p = Path(text).expanduser().resolve()
        except (OSError, RuntimeError):
            raise BadInput(f"{text}: not a usable path") from None
        for base in self.local_paths:
            b = Path(base).expanduser().resolve()
            if p == b or b in p.parents:
                return str(p)
        raise BadInput(f"{text}: outside the folders this server allows ({', '.join(self.local_paths)}); upload the file instead")


def uploads_size(project_root: Path) -> int:
    """Bytes the project holds from uploads: inputs/ and kept consent evidence."""
    total = 0
    for folder in (project_root / "inputs", project_root / "consent"):
        if folder.is_dir():
            for f in folder.rglob("*"):
                if f.is_file() and (folder.name == "inputs" or f.parent.name.endswith(".evidence")):
                    total += f.stat().st_size
    return total


def check_quota(settings: UiSettings, project_root: Path, adding: list[str | Path]) -> None:
    """BadInput when ``adding`` would take the project over its upload quota."""
    if settings.project_quota is None:
        return
    new = sum(Path(a).stat().st_size for a in adding if a and Path(a).is_file())
    have = uploads_size(project_root)
    if have + new > settings.project_quota:
        mb = 1024 * 1024
        raise BadInput(
            f"{project_root.name}: uploads would reach {(have + new) / mb:.0f} MB, over this project's quota of "
            f"{settings.project_quota / mb:.0f} MB; remove files or use another project"
        )
