"""What an extraction did: the summary returned by ``extract_faceset``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExtractSummary:
    faceset: str  # output folder
    faceset_id: str
    sources: int  # inputs processed this run
    sources_skipped: int  # inputs already fully extracted earlier (resume)
    frames_read: int  # sampled frames looked at this run
    frames_with_face: int  # of those, frames where at least one face was detected
    faces_found: int  # faces detected this run
    faces_kept: int  # faces added to the faceset this run
    faces_total: int  # faces in the faceset now
    rejected: dict[str, int] = field(default_factory=dict)  # reason → count
    identities: int = 1  # identities seen this run (clustering), 1 when one person
    seconds: float = 0.0
    notes: tuple[str, ...] = ()  # warnings worth reading

    @property
    def frames_per_second(self) -> float:
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frames_per_second"] = round(self.frames_per_second, 2)
        return d

    def lines(self, notes: bool = True) -> list[str]:
        """Human-readable summary; ``notes=False`` leaves out the notes (already reported)."""
        rej = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self.rejected.items()) if v) or "none"
        out = [
            f"faceset {self.faceset} (id {self.faceset_id})",
            f"  sources: {self.sources} processed" + (f", {self.sources_skipped} already done" if self.sources_skipped else ""),
            f"  frames read: {self.frames_read} ({self.frames_with_face} with a face) in {self.seconds:.1f} s, {self.frames_per_second:.1f} frames/s",
            f"  faces: {self.faces_found} found, {self.faces_kept} kept, {self.faces_total} in the faceset",
            f"  rejected: {rej}",
        ]
        if notes:
            out += [f"  note: {n}" for n in self.notes]
        return out
