"""The trained-model artifact: one versioned, checksummed archive written atomically, read safely.

An artifact is a single ZIP file (see docs/artifact-format.md) holding the resolved spec, the
weights and any state arrays in safetensors, and everything else in JSON, with a manifest of
SHA-256 digests. A single file can be replaced atomically (temporary file, fsync, rename), so a
reader never sees half of one, and nothing in it is ever executed: JSON and safetensors only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from engine.atomic import atomic_write_bytes

FORMAT_NAME = "modelspec-artifact"
FORMAT_VERSION = 1
MODEL_FILE = "model.msz"
CHECKPOINT_DIR = "checkpoints"
MANIFEST = "manifest.json"
_ZIP_MAGIC = b"PK\x03\x04"
_CHECKPOINT_RE = re.compile(r"^epoch-(\d{6})(?:-step-(\d{9}))?\.msz$")
_MEMBER_RE = re.compile(r"^[a-z_]+\.(json|safetensors)$")
_ARRAY_TAG = "__array__"


# ----- errors ------------------------------------------------------------------------------
class ArtifactError(ValueError):
    """An artifact cannot be used; `kind` names the damage, the CLI maps every one to exit 2."""

    kind = "invalid"
    label = "invalid artifact"

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {self.label}: {detail}")


class ArtifactNotFoundError(ArtifactError):
    kind = "missing"
    label = "no artifact"


class NotAnArtifactError(ArtifactError):
    kind = "not-an"
    label = "not a modelspec artifact"


class TruncatedArtifactError(ArtifactError):
    kind = "truncated"
    label = "truncated artifact"


class CorruptedArtifactError(ArtifactError):
    kind = "corrupted"
    label = "corrupted artifact"


class TamperedArtifactError(ArtifactError):
    kind = "tampered"
    label = "tampered artifact"


class NewerFormatError(ArtifactError):
    kind = "newer-format"
    label = "artifact from a newer modelspec"


class MissingMemberError(ArtifactError):
    kind = "incomplete"
    label = "incomplete artifact"


class UnexpectedMemberError(ArtifactError):
    kind = "unexpected-member"
    label = "artifact with an unexpected member"


class DuplicateMemberError(ArtifactError):
    kind = "duplicate-member"
    label = "artifact with a duplicated member"


class MalformedMemberError(ArtifactError):
    kind = "malformed"
    label = "malformed artifact"


class WeightsMismatchError(ArtifactError):
    kind = "mismatched-weights"
    label = "weights that do not fit the model"


# ----- the data in an artifact -------------------------------------------------------------
@dataclass
class Artifact:
    """Everything an artifact holds, as plain data (no Model needed to read or write one)."""

    spec: dict[str, Any]
    weights: dict[str, np.ndarray]
    training_state: dict[str, Any] | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    label_maps: dict[str, list[Any]] = field(default_factory=dict)
    statistics: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


# ----- state trees: nested JSON with arrays split out into safetensors ---------------------
def _split_arrays(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every array in `tree` by a reference, collecting the arrays under unique keys."""
    if isinstance(tree, Mapping):
        return {str(k): _split_arrays(v, f"{prefix}/{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split_arrays(v, f"{prefix}/{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.ndarray):
        arrays[prefix] = np.asarray(tree, order="C")
        return {_ARRAY_TAG: prefix}
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot store {type(tree).__name__} at {prefix!r} in an artifact")


def _join_arrays(tree: Any, arrays: Mapping[str, np.ndarray], where: str) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY_TAG}:
            key = tree[_ARRAY_TAG]
            if not isinstance(key, str) or key not in arrays:
                raise MalformedMemberError(where, f"state refers to a missing array {key!r}")
            return arrays[key]
        return {k: _join_arrays(v, arrays, where) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join_arrays(v, arrays, where) for v in tree]
    return tree


# ----- writing -----------------------------------------------------------------------------
def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, allow_nan=True).encode("utf-8")


def _array_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    return bytes(st_save({k: np.asarray(v, order="C") for k, v in arrays.items()}))


def package_versions() -> dict[str, str]:
    """Versions of what produced the artifact, for whoever has to reproduce it."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("modelspec", "numpy", "safetensors"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def _members(artifact: Artifact) -> dict[str, bytes]:
    members = {
        "spec.json": _json_bytes(artifact.spec),
        "weights.safetensors": _array_bytes(artifact.weights),
        "history.json": _json_bytes(artifact.history),
        "label_maps.json": _json_bytes(artifact.label_maps),
        "statistics.safetensors": _array_bytes(artifact.statistics),
        "metadata.json": _json_bytes(artifact.metadata),
    }
    if artifact.training_state is not None:
        state_arrays: dict[str, np.ndarray] = {}
        tree = _split_arrays(artifact.training_state, "state", state_arrays)
        members["training_state.json"] = _json_bytes(tree)
        members["training_state.safetensors"] = _array_bytes(state_arrays)
    return members


def artifact_bytes(artifact: Artifact) -> bytes:
    """The artifact as one ZIP archive: members, then the manifest of their digests."""
    members = _members(artifact)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in members.items()
        },
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in [(MANIFEST, _json_bytes(manifest)), *members.items()]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, data)
    return buffer.getvalue()


def write_artifact(path: str | os.PathLike[str], artifact: Artifact) -> Path:
    """Atomically write `artifact` to the file `path` (a folder gets `model.msz` inside)."""
    target = _artifact_file(Path(path), must_exist=False)
    atomic_write_bytes(target, artifact_bytes(artifact))
    return target


# ----- reading -----------------------------------------------------------------------------
def _artifact_file(path: Path, must_exist: bool = True) -> Path:
    """The archive for `path`: the file itself, or a run folder's `model.msz`."""
    if path.is_dir() or (not must_exist and path.suffix != ".msz"):
        path = path / MODEL_FILE
    if must_exist and not path.is_file():
        raise ArtifactNotFoundError(path, "no such file (expected a model.msz or a run folder)")
    return path


def is_artifact_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a file that starts as a model archive does (whatever its suffix)."""
    file = Path(path)
    if not file.is_file():
        return False
    with file.open("rb") as handle:
        return handle.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC


# What zipfile raises for damaged bytes: a bad offset is a ValueError (a negative seek), a
# mangled compression method NotImplementedError, a broken deflate stream zlib.error.
_ZIP_DAMAGE = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error)


def read_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Read and verify an artifact; every kind of damage is its own ArtifactError subclass."""
    return read_artifact_bytes(path)[0]


def read_artifact_bytes(path: str | os.PathLike[str]) -> tuple[Artifact, bytes]:
    """`read_artifact`, and the archive's bytes as read (to fingerprint the file without
    reading it again)."""
    file = _artifact_file(Path(path))
    data = file.read_bytes()
    return _parse_artifact(file, data), data


def _parse_artifact(file: Path, data: bytes) -> Artifact:
    if not data:
        raise TruncatedArtifactError(file, "the file is empty")
    if not data.startswith(_ZIP_MAGIC):
        raise NotAnArtifactError(file, "no ZIP header (is this a model.msz?)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_DAMAGE as exc:
        raise TruncatedArtifactError(
            file, f"the archive's directory is missing or cut short ({exc})"
        ) from None
    with archive:
        names = [info.filename for info in archive.infolist()]
        _check_names(file, names)
        manifest = _read_manifest(file, archive)
        contents = _verified_members(file, archive, manifest, set(names))
    return _decode(file, contents)


def _check_names(file: Path, names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DuplicateMemberError(file, f"member stored more than once: {duplicates[0]}")
    if MANIFEST not in names:
        raise MissingMemberError(file, f"no {MANIFEST}")


def _read_member(file: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except _ZIP_DAMAGE as exc:
        raise CorruptedArtifactError(file, f"{name}: damaged bytes ({exc})") from None


def _read_manifest(file: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    manifest = _parse_json(file, MANIFEST, _read_member(file, archive, MANIFEST))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise NotAnArtifactError(file, f"{MANIFEST} does not describe a {FORMAT_NAME}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MalformedMemberError(file, f"bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise NewerFormatError(
            file,
            f"format_version {version} is newer than this modelspec reads ({FORMAT_VERSION}); "
            "upgrade modelspec",
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
    ):
        raise MalformedMemberError(file, f"{MANIFEST} has no valid `files` table")
    return manifest


_REQUIRED = ("spec.json", "weights.safetensors", "metadata.json")


def _verified_members(
    file: Path, archive: zipfile.ZipFile, manifest: dict[str, Any], names: set[str]
) -> dict[str, bytes]:
    listed: dict[str, Any] = manifest["files"]
    for name in sorted(names - {MANIFEST}):
        if name not in listed or not _MEMBER_RE.match(name):
            raise UnexpectedMemberError(file, f"member {name!r} is not in the manifest")
    for name in (*_REQUIRED, *listed):
        if name not in names:
            raise MissingMemberError(file, f"member {name!r} is missing")
    contents: dict[str, bytes] = {}
    for name, entry in listed.items():
        if archive.getinfo(name).file_size != entry.get("size"):
            raise TamperedArtifactError(
                file, f"{name} is not the size the manifest records (modified after saving)"
            )
        data = _read_member(file, archive, name)
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise TamperedArtifactError(
                file, f"{name} does not match its SHA-256 in the manifest (modified after saving)"
            )
        contents[name] = data
    return contents


def _parse_json(file: Path, name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMemberError(file, f"{name} is not valid JSON ({exc})") from None


def _parse_arrays(file: Path, name: str, data: bytes) -> dict[str, np.ndarray]:
    try:
        return dict(st_load(data))
    except (SafetensorError, ValueError) as exc:
        raise MalformedMemberError(file, f"{name} is not valid safetensors ({exc})") from None


def _typed(file: Path, name: str, value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise MalformedMemberError(file, f"{name} must hold a {kind.__name__}")
    return value


def _decode(file: Path, contents: dict[str, bytes]) -> Artifact:
    def js(name: str, default: Any) -> Any:
        if name not in contents:
            return default
        return _typed(file, name, _parse_json(file, name, contents[name]), type(default))

    def arrays(name: str) -> dict[str, np.ndarray]:
        return _parse_arrays(file, name, contents[name]) if name in contents else {}

    state = None
    if "training_state.json" in contents:
        tree = js("training_state.json", {})
        state = _join_arrays(tree, arrays("training_state.safetensors"), str(file))
    return Artifact(
        spec=js("spec.json", {}),
        weights=arrays("weights.safetensors"),
        training_state=state,
        history=js("history.json", {}),
        label_maps=js("label_maps.json", {}),
        statistics=arrays("statistics.safetensors"),
        metadata=js("metadata.json", {}),
    )


# ----- checkpoints -------------------------------------------------------------------------
def checkpoint_path(run_dir: str | os.PathLike[str], epoch: int, step: int = 0) -> Path:
    """Where the checkpoint taken after epoch `epoch` (0-based) lives; with `step`, the one
    taken `step` steps into epoch `epoch` (file names sort in the order they were taken)."""
    name = f"epoch-{epoch:06d}-step-{step:09d}.msz" if step else f"epoch-{epoch:06d}.msz"
    return Path(run_dir) / CHECKPOINT_DIR / name


def checkpoint_position(path: Path) -> tuple[int, int]:
    """(epochs finished, steps into the next epoch) at which a checkpoint was taken."""
    found = _CHECKPOINT_RE.match(path.name)
    if found is None:
        raise ValueError(f"{path.name!r} is not a checkpoint file name")
    epoch = int(found.group(1))
    return (epoch, int(found.group(2))) if found.group(2) else (epoch + 1, 0)


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary files are never listed)."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _CHECKPOINT_RE.match(p.name)]
    return sorted(found, key=lambda p: p.name)


def write_checkpoint(
    run_dir: str | os.PathLike[str], epoch: int, artifact: Artifact, keep: int = 2, step: int = 0
) -> Path:
    """Write one checkpoint atomically, then drop all but the newest `keep` and stale temps."""
    target = checkpoint_path(run_dir, epoch, step)
    atomic_write_bytes(target, artifact_bytes(artifact))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    for stale in target.parent.glob(".epoch-*.tmp"):
        stale.unlink(missing_ok=True)
    return target


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> tuple[Path, Artifact]:
    """The newest checkpoint that reads back intact; older ones are the fallback."""
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise ArtifactNotFoundError(Path(run_dir) / CHECKPOINT_DIR, "no checkpoint to resume from")
    errors: list[ArtifactError] = []
    for path in reversed(candidates):
        try:
            return path, read_artifact(path)
        except ArtifactError as exc:
            errors.append(exc)
    raise errors[0]


# ----- the Model on top --------------------------------------------------------------------
def _model_spec(model: Any, base: Mapping[str, Any] | None) -> dict[str, Any]:
    """The resolved spec: the run's spec (data, fit, ...) with the model's own sections."""
    spec: dict[str, Any] = dict(base or {})
    spec["model"] = model.get_config()
    if getattr(model, "compile_config", None):
        spec["compile"] = model.compile_config
    if getattr(model, "seed", None) is not None:
        spec["seed"] = model.seed
    spec["dtype"] = getattr(model, "dtype", "float32")
    if getattr(model, "name", None):
        spec.setdefault("name", model.name)
    return spec


def _model_weights(model: Any) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    for w in model.weights:
        if w.name in weights:
            raise ValueError(f"two weights are named {w.name!r}; names must be unique to save")
        weights[w.name] = np.asarray(w.numpy())
    return weights


def history_of(model: Any) -> dict[str, list[float]]:
    """`model.history` (a History callback or a plain mapping) as a dict of float lists."""
    history = getattr(model, "history", None)
    data = getattr(history, "history", history) or {}
    return {str(k): [float(v) for v in values] for k, values in dict(data).items()}


def model_artifact(
    model: Any,
    *,
    spec: Mapping[str, Any] | None = None,
    label_maps: Mapping[str, list[Any]] | None = None,
    statistics: Mapping[str, np.ndarray] | None = None,
    data_fingerprints: Mapping[str, str] | None = None,
    final_metrics: Mapping[str, float] | None = None,
    training_state: dict[str, Any] | None = None,
    history: Mapping[str, list[float]] | None = None,
) -> Artifact:
    """Collect what a Model holds into an Artifact (no file written)."""
    state = training_state
    if state is None and hasattr(model, "get_training_state"):
        state = model.get_training_state()
    metadata = {
        "format_version": FORMAT_VERSION,
        "package_versions": package_versions(),
        "seed": getattr(model, "seed", None),
        "data_fingerprints": dict(data_fingerprints or {}),
        "final_metrics": {k: float(v) for k, v in (final_metrics or {}).items()},
    }
    return Artifact(
        spec=_model_spec(model, spec),
        weights=_model_weights(model),
        training_state=state,
        history=dict(history) if history is not None else history_of(model),
        label_maps={k: list(v) for k, v in (label_maps or {}).items()},
        statistics=dict(statistics or {}),
        metadata=metadata,
    )


def save_model(model: Any, path: str | os.PathLike[str], **extras: Any) -> Path:
    """`model.save(path)`: the archive at exactly `path`, whatever its suffix, as Keras writes
    one file (`m.keras`, `m.h5`, `m.msz`); an existing folder (a run folder) gets `model.msz`.

    `extras` are model_artifact's keywords: spec, label_maps, statistics, data_fingerprints,
    final_metrics.
    """
    target = Path(path)
    if target.is_dir():
        target = target / MODEL_FILE
    atomic_write_bytes(target, artifact_bytes(model_artifact(model, **extras)))
    return target


def fingerprint_file(path: str | os.PathLike[str]) -> str:
    """`sha256:<hex>` of a data file, to tell later which data a model was trained on."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def fingerprint_bytes(data: bytes) -> str:
    """`fingerprint_file` of a file whose bytes are already in memory."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def apply_artifact(model: Any, artifact: Artifact, where: str, restore_state: bool = True) -> Any:
    """Load an artifact's weights (and training state) into a model built from its spec."""
    expected = {w.name: w for w in model.weights}
    missing = sorted(set(expected) - set(artifact.weights))
    extra = sorted(set(artifact.weights) - set(expected))
    if missing or extra:
        raise WeightsMismatchError(
            where, f"weights do not match the spec (missing {missing}, unexpected {extra})"
        )
    for name, var in expected.items():
        value = artifact.weights[name]
        if tuple(value.shape) != tuple(var.shape) or value.dtype != np.dtype(var.dtype.name):
            raise WeightsMismatchError(
                where,
                f"weight {name!r} is {value.dtype}{list(value.shape)}; "
                f"the spec needs {var.dtype.name}{list(var.shape)}",
            )
    for name, var in expected.items():
        var.assign(artifact.weights[name])
    if restore_state and artifact.training_state is not None:
        try:
            model.set_training_state(artifact.training_state)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise MalformedMemberError(
                where, f"its training state does not fit this model's optimizer: {exc}"
            ) from exc
    model.label_maps = artifact.label_maps
    model.artifact_metadata = artifact.metadata
    return model
