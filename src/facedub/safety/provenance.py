"""Provenance on every output: metadata tags, a manifest JSON beside the file, and C2PA.

* **Tags** — MP4/MOV/MKV: container metadata (``comment``, ``description`` and the custom
  ``facedub_output_id`` / ``facedub_version`` keys, written with ``movflags=use_metadata_tags``)
  by a packet-copy remux (Matroska stores the keys upper-case; :func:`read_tags` reads
  them in any case); PNG: ``tEXt`` chunks; JPEG: a comment segment. Pixels are untouched.
* **Manifest** — ``<output>.facedub.json``: tool and version, output id, time, input file
  hashes, model id, faceset and consent ids, settings, watermark scheme, and the sha256 of
  the final file.
* **C2PA** — a signed Content Credentials manifest embedded in the file (c2pa-python),
  declaring ``c2pa.created`` with digitalSourceType *trainedAlgorithmicMedia* and carrying
  the output id. Signed ES256 with a leaf certificate under a local CA that facedub creates
  on first use in ``$FACEDUB_HOME/c2pa`` (default ``~/.config/facedub/c2pa``), or with the
  user's own chain and key (``FACEDUB_C2PA_CERT`` / ``FACEDUB_C2PA_KEY``, PEM files).
  Validators report the private CA as untrusted unless the user adds ``ca.pem`` to their
  trust list; the signature and hashes still validate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from facedub import __version__
from facedub.errors import BadInput
from facedub.fileio import atomic_path, sha256_file, write_json

TOOL = "facedub"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
C2PA_ASSERTION = "org.facedub.output"
MANIFEST_SUFFIX = ".facedub.json"
TAG_ID = "facedub_output_id"
TAG_VERSION = "facedub_version"
TAG_KIND = "facedub_kind"  # "pristine" on a dataset's real clip (absent on swaps)
PRISTINE = "pristine"
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")  # signed with C2PA
TAGGED_VIDEO_SUFFIXES = VIDEO_SUFFIXES + (".mkv",)  # container tags (.mkv: --codec ffv1, no C2PA binding)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
        ".tif": "image/tiff", ".tiff": "image/tiff"}  # TIFF: image-sequence frames (facedub.safety.sequence_marks)


def new_output_id() -> str:
    """48 random bits as 12 hex digits (what the watermark carries)."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class OutputInfo:
    output_id: str  # 12 hex digits, also in the watermark, the tags and C2PA
    created: str  # ISO 8601 UTC
    inputs: tuple[dict[str, Any], ...] = ()  # {"path", "sha256", "role"} per input file
    model_id: str | None = None
    faceset_ids: tuple[str, ...] = ()
    consent_ids: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)  # stage settings (JSON-able)
    visible_label: bool = True  # whether the "AI-generated" corner label was drawn
    tool_version: str = __version__
    pristine: bool = False  # a dataset's real clip: re-encoded and marked "pristine", no face replaced

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_info(
    inputs: list[str | os.PathLike[str]] | tuple = (),
    model_meta: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    visible_label: bool = True,
    output_id: str | None = None,
    roles: tuple[str, ...] | None = None,
    pristine: bool = False,
) -> OutputInfo:
    meta = dict(model_meta or {})
    recs = []
    for i, p in enumerate(inputs):
        p = Path(p)
        recs.append({"path": str(p.resolve()), "sha256": sha256_file(p) if p.is_file() else None, "role": (roles[i] if roles and i < len(roles) else "target")})
    consent = meta.get("consent") if isinstance(meta.get("consent"), Mapping) else {}
    consent_ids = tuple(str(r.get("id")) for r in consent.values() if isinstance(r, Mapping) and r.get("id"))
    consent_ids = consent_ids or tuple(str(x) for x in meta.get("consent_ids", ()) or ())
    faceset_ids = tuple(str(x) for x in meta.get("faceset_ids", ()) or ())
    fsets = meta.get("facesets")
    if not faceset_ids and isinstance(fsets, Mapping):  # train's model.json: {"source": {"id": ...}, ...}
        faceset_ids = tuple(str(v["id"]) for v in fsets.values() if isinstance(v, Mapping) and v.get("id"))
    if not faceset_ids:
        faceset_ids = tuple(str(meta[k]) for k in ("source_faceset_id", "target_faceset_id", "source_faceset", "target_faceset") if isinstance(meta.get(k), str))
    model_id = meta.get("model_id") or meta.get("id")
    return OutputInfo(
        output_id=output_id or new_output_id(),
        created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        inputs=tuple(recs),
        model_id=str(model_id) if model_id is not None else None,
        faceset_ids=faceset_ids,
        consent_ids=consent_ids,
        settings=_jsonable(dict(settings or {})),
        visible_label=bool(visible_label),
        pristine=bool(pristine),
    )


def _jsonable(x: Any) -> Any:
    try:
        json.dumps(x)
        return x
    except TypeError:
        if isinstance(x, Mapping):
            return {str(k): _jsonable(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [_jsonable(v) for v in x]
        return str(x)


# ----------------------------------------------------------------------------------------
# Tags


def tags_for(info: OutputInfo) -> dict[str, str]:
    """Container metadata naming facedub and the output id (also usable as VideoWriter metadata)."""
    if info.pristine:
        text = f"Unaltered real clip re-encoded by {TOOL} {info.tool_version} for a detection dataset (pristine); output id {info.output_id}"
        return {"comment": text, "description": text, TAG_ID: info.output_id, TAG_VERSION: info.tool_version, TAG_KIND: PRISTINE}
    text = f"AI-generated with {TOOL} {info.tool_version}; output id {info.output_id}"
    return {"comment": text, "description": text, TAG_ID: info.output_id, TAG_VERSION: info.tool_version}


def write_tags(path: str | os.PathLike[str], info: OutputInfo, suffix: str | None = None) -> None:
    """Add the facedub tags to ``path`` in place (no pixel change). ``suffix`` overrides the type."""
    path = Path(path)
    kind = (suffix or path.suffix).lower()
    tags = tags_for(info)
    if kind in TAGGED_VIDEO_SUFFIXES:
        _remux_with_tags(path, tags, kind)
    elif kind == ".png":
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        with Image.open(path) as im:
            im.load()
            pnginfo = PngInfo()
            for k, v in tags.items():
                pnginfo.add_text(k, v)
            with atomic_path(path, ".png") as tmp:
                im.save(tmp, format="PNG", pnginfo=pnginfo, compress_level=1)
    elif kind in (".jpg", ".jpeg"):
        data = path.read_bytes()
        if data[:2] != b"\xff\xd8":
            raise BadInput(f"{path}: not a JPEG file")
        text = json.dumps({k: tags[k] for k in (TAG_ID, TAG_VERSION, "comment")}).encode()
        seg = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
        with atomic_path(path, kind) as tmp:
            tmp.write_bytes(data[:2] + seg + data[2:])
    else:
        raise BadInput(f"{path}: cannot tag a {kind or 'suffix-less'} file (facedub writes MP4, PNG or JPEG)")


def _remux_with_tags(path: Path, tags: dict[str, str], kind: str) -> None:
    import av

    fmt = {".mov": "mov", ".mkv": "matroska"}.get(kind, "mp4")
    options = {} if fmt == "matroska" else {"movflags": "use_metadata_tags"}
    with atomic_path(path, kind) as tmp:
        with av.open(str(path)) as src, av.open(str(tmp), "w", format=fmt, options=options) as dst:
            dst.metadata.update(tags)
            mapping = {}
            for s in src.streams:
                if s.type in ("video", "audio"):
                    mapping[s.index] = dst.add_stream_from_template(s)
            for pkt in src.demux(*[s for s in src.streams if s.index in mapping]):
                if pkt.dts is None:
                    continue
                pkt.stream = mapping[pkt.stream.index]
                dst.mux(pkt)


def read_tags(path: str | os.PathLike[str]) -> dict[str, str]:
    """The facedub tags found in a file ({} when none). Never raises for unreadable files."""
    path = Path(path)
    kind = path.suffix.lower()
    found: dict[str, str] = {}
    try:
        if kind in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
            from PIL import Image

            with Image.open(path) as im:
                meta = dict(getattr(im, "text", {}) or {})
                meta.update({k: v for k, v in im.info.items() if isinstance(v, str)})
                com = im.info.get("comment")
                if isinstance(com, bytes):
                    try:
                        meta.update(json.loads(com.decode("utf-8")))
                    except (ValueError, UnicodeDecodeError):
                        meta["comment"] = com.decode("latin-1")
        else:
            import av

            with av.open(str(path)) as c:
                meta = {k.lower(): v for k, v in c.metadata.items()}  # Matroska: FACEDUB_OUTPUT_ID
                for s in c.streams:
                    meta.update({k.lower(): v for k, v in s.metadata.items() if k.lower() not in meta})
    except Exception:  # unreadable: no tags (verify reports the file problem separately)
        return {}
    for k, v in meta.items():
        if k in (TAG_ID, TAG_VERSION, TAG_KIND) or (k in ("comment", "description") and isinstance(v, str) and TOOL in v):
            found[k] = str(v)
    return found


# ----------------------------------------------------------------------------------------
# Manifest


def manifest_path(output: str | os.PathLike[str]) -> Path:
    return Path(str(output) + MANIFEST_SUFFIX)


def manifest_for(info: OutputInfo, final_path: str | os.PathLike[str], file_sha256: str | None) -> dict[str, Any]:
    from facedub.safety import watermark as wm

    return {
        "type": "facedub.manifest",
        "version": 1,
        "tool": TOOL,
        "tool_version": info.tool_version,
        "output": Path(final_path).name,
        "output_id": info.output_id,
        "output_sha256": file_sha256,
        "created": info.created,
        "ai_generated": not info.pristine,
        "digital_source_type": None if info.pristine else DIGITAL_SOURCE_TYPE,
        "kind": PRISTINE if info.pristine else "swap",
        "inputs": list(info.inputs),
        "model_id": info.model_id,
        "faceset_ids": list(info.faceset_ids),
        "consent_ids": list(info.consent_ids),
        "settings": info.settings,
        "visible_label": info.visible_label,
        "watermark": {"scheme": "facedub-tiled-ss-v1", "marker": f"{wm.MARKER:04x}", "payload_bits": wm.PAYLOAD_BITS, "coded_bits": wm.CODED_BITS},
        "c2pa": not info.pristine and c2pa_binds(final_path),  # a pristine clip is not signed as AI-generated media; .mkv cannot be
    }


def write_manifest(final_path: str | os.PathLike[str], info: OutputInfo, file_sha256: str | None) -> Path:
    mp = manifest_path(final_path)
    write_json(mp, manifest_for(info, final_path, file_sha256))
    return mp


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    mp = manifest_path(path)
    try:
        d = json.loads(mp.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) and d.get("type") == "facedub.manifest" else None


# ----------------------------------------------------------------------------------------
# C2PA


def facedub_home() -> Path:
    env = os.environ.get("FACEDUB_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "facedub"


@dataclass(frozen=True)
class SigningCredentials:
    chain_pem: bytes  # leaf certificate followed by the CA certificate(s)
    key_pem: bytes  # the leaf's private key
    source: str  # where they came from (folder or files)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def create_local_ca(folder: Path) -> None:
    """Create ``ca.pem``/``ca.key`` (a local CA) and ``signer.pem``/``signer.key`` (an ES256 leaf)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    user = os.environ.get("USER") or "user"
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"facedub local CA ({user})"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "facedub")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"facedub signer ({user})"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "facedub")])

    def ku(sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
        )

    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ku(False, True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(leaf_name).issuer_name(ca_name).public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ku(True, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".c2pa.", dir=folder.parent))
    try:
        (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
        _write_private(tmp / "ca.key", ca_key.private_bytes(pem, pkcs8, none))
        (tmp / "signer.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
        _write_private(tmp / "signer.key", leaf_key.private_bytes(pem, pkcs8, none))
        try:
            os.rename(tmp, folder)  # atomic; fails if another process made it first
        except OSError:
            if not (folder / "signer.pem").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def signing_credentials(cert: str | os.PathLike[str] | None = None, key: str | os.PathLike[str] | None = None) -> SigningCredentials:
    """The user's own chain + key (arguments, else FACEDUB_C2PA_CERT/KEY), else the local CA's leaf."""
    cert = cert or os.environ.get("FACEDUB_C2PA_CERT")
    key = key or os.environ.get("FACEDUB_C2PA_KEY")
    if cert or key:
        if not (cert and key):
            raise BadInput("C2PA signing: give both a certificate chain and a private key (FACEDUB_C2PA_CERT and FACEDUB_C2PA_KEY)")
        try:
            return SigningCredentials(Path(cert).read_bytes(), Path(key).read_bytes(), f"{cert}")
        except OSError as e:
            raise BadInput(f"{e.filename}: cannot read the C2PA signing certificate or key ({e.strerror})") from None
    folder = facedub_home() / "c2pa"
    if not (folder / "signer.pem").is_file():
        create_local_ca(folder)
    return SigningCredentials((folder / "signer.pem").read_bytes(), (folder / "signer.key").read_bytes(), str(folder))


def c2pa_manifest_definition(info: OutputInfo, title: str, mime: str) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": TOOL, "version": info.tool_version}],
        "title": title,
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": {"name": TOOL, "version": info.tool_version},
                            "description": "Face replaced by a face-swap model (AI-generated media)",
                        }
                    ]
                },
            },
            {
                "label": C2PA_ASSERTION,
                "data": {
                    "output_id": info.output_id,
                    "model_id": info.model_id,
                    "faceset_ids": list(info.faceset_ids),
                    "consent_ids": list(info.consent_ids),
                },
            },
        ],
    }


def c2pa_binds(path: str | os.PathLike[str]) -> bool:
    """Whether c2pa-python can embed Content Credentials in a file of this type (not Matroska)."""
    return Path(path).suffix.lower() in MIME


def sign_c2pa(path: str | os.PathLike[str], info: OutputInfo, title: str | None = None, suffix: str | None = None,
              creds: SigningCredentials | None = None) -> None:
    """Embed a signed C2PA manifest into ``path`` in place (atomic)."""
    import c2pa

    path = Path(path)
    kind = (suffix or path.suffix).lower()
    mime = MIME.get(kind)
    if mime is None:
        raise BadInput(f"{path}: C2PA signing supports MP4, MOV, PNG, JPEG and TIFF, not {kind or 'this file'}")
    creds = creds or signing_credentials()
    definition = c2pa_manifest_definition(info, title or path.name, mime)
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, creds.chain_pem, creds.key_pem, None))
        with signer, c2pa.Builder(json.dumps(definition)) as builder:
            with atomic_path(path, kind) as tmp:
                with open(path, "rb") as src, open(tmp, "w+b") as dst:
                    builder.sign(signer, mime, src, dst)
    except c2pa.C2paError as e:
        raise BadInput(f"{path}: C2PA signing failed with the credentials in {creds.source} ({e})") from None


@dataclass(frozen=True)
class C2paState:
    present: bool  # a C2PA manifest store is embedded
    validation_state: str | None  # "Valid", "Trusted", "Invalid", … as c2pa reports it
    ai_generated: bool  # an action declares trainedAlgorithmicMedia
    by_facedub: bool  # claim generator is facedub
    output_id: str | None
    failures: tuple[str, ...] = ()  # validation failure codes (signingCredential.untrusted etc.)
    error: str | None = None


def read_c2pa(path: str | os.PathLike[str]) -> C2paState:
    import c2pa

    path = Path(path)
    try:
        reader = c2pa.Reader.try_create(str(path))
    except c2pa.C2paError as e:
        return C2paState(False, None, False, False, None, error=str(e))
    except Exception as e:  # unsupported format and the like
        return C2paState(False, None, False, False, None, error=f"{type(e).__name__}: {e}")
    if reader is None:
        return C2paState(False, None, False, False, None)
    with reader:
        state = reader.get_validation_state()
        results = reader.get_validation_results() or {}
        manifest = reader.get_active_manifest() or {}
    failures = []
    for section in (results.get("activeManifest") or {}).get("failure", []) or []:
        if isinstance(section, dict) and section.get("code"):
            failures.append(str(section["code"]))
    gen = manifest.get("claim_generator_info") or []
    by_facedub = any(isinstance(g, dict) and g.get("name") == TOOL for g in gen) or TOOL in str(manifest.get("claim_generator", ""))
    ai, oid = False, None
    for a in manifest.get("assertions", []) or []:
        label = a.get("label", "")
        data = a.get("data") or {}
        if label.startswith("c2pa.actions"):
            for act in data.get("actions", []) or []:
                if "trainedAlgorithmicMedia" in str(act.get("digitalSourceType", "")):
                    ai = True
        if label == C2PA_ASSERTION:
            oid = data.get("output_id")
    return C2paState(True, state, ai, by_facedub, oid, tuple(failures))
