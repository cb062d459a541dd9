"""Versioned, atomic, checksummed checkpoints of arbitrary pytrees.

File layout (one file per checkpoint, ``ckpt_<iteration>.adaptrl``)::

    ADAPTRL-CKPT\\n                 magic line
    {json header}\\n                format version, adaptrl version, iteration, sha256 of payload,
                                   the run's config and the pytree's structure
    payload                        flax msgpack of the state pytree (numpy arrays)

Writes go through ``atomic_write_bytes`` (temp file + fsync + rename), so a crash or Ctrl-C never
leaves a half-written checkpoint under the final name. Loading verifies magic, format version,
checksum and tree structure, and says what to do when one fails.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from adaptrl.utils.io import atomic_write_bytes

MAGIC = b"ADAPTRL-CKPT\n"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt_(\d+)\.adaptrl$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or incompatible with the requested run."""


def checkpoint_path(directory: str | Path, iteration: int) -> Path:
    return Path(directory) / f"ckpt_{iteration:08d}.adaptrl"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every checkpoint in ``directory``, oldest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def _structure(tree: Any) -> str:
    return str(jax.tree_util.tree_structure(tree))


def save_checkpoint(
    directory: str | Path,
    iteration: int,
    state: Any,
    *,
    config: dict | None = None,
    extra: dict | None = None,
    keep: int = 3,
) -> Path:
    """Atomically write ``state`` (any pytree of arrays) as the checkpoint for ``iteration``.

    Keeps the newest ``keep`` checkpoints; older ones are deleted only after the new one is safely
    on disk.
    """
    from adaptrl import __version__

    host_state = jax.tree_util.tree_map(np.asarray, jax.device_get(state))
    payload = serialization.msgpack_serialize(serialization.to_state_dict(host_state))
    header = {
        "format_version": FORMAT_VERSION,
        "adaptrl_version": __version__,
        "iteration": int(iteration),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "structure": _structure(host_state),
        "config": config or {},
        "extra": extra or {},
    }
    data = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload
    path = checkpoint_path(directory, iteration)
    atomic_write_bytes(path, data)
    for _, old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        if old != path:
            old.unlink(missing_ok=True)
    return path


# What to do about one corrupt checkpoint: both resume and eval fall back to older ones.
_OLDER = ("`--resume` and `adaptrl eval` skip it and use the newest older checkpoint that "
          "verifies; move it out of checkpoints/ to silence this")


def read_header(path: str | Path) -> tuple[dict, bytes]:
    """Parse and verify a checkpoint file; return (header, payload)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    if not data.startswith(MAGIC):
        raise CheckpointError(
            f"{path} is not an adaptrl checkpoint (bad magic). Only ckpt_*.adaptrl files "
            "written by adaptrl belong in a run's checkpoints/ directory; move this file away"
        )
    rest = data[len(MAGIC) :]
    nl = rest.find(b"\n")
    try:
        header = json.loads(rest[:nl])
        if not isinstance(header, dict) or "structure" not in header:
            raise ValueError("the header is not a JSON object with a 'structure' field")
    except ValueError as e:  # also JSONDecodeError and UnicodeDecodeError
        raise CheckpointError(f"{path}: corrupt checkpoint header ({e}). {_OLDER}") from e
    payload = rest[nl + 1 :]
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {header.get('format_version')}, this adaptrl reads "
            f"format {FORMAT_VERSION}; load it with adaptrl {header.get('adaptrl_version')} or "
            "start a new run"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CheckpointError(
            f"{path} is corrupt (checksum mismatch: truncated or modified). {_OLDER}"
        )
    return header, payload


def load_checkpoint(path: str | Path, template: Any) -> tuple[dict, Any]:
    """Load a checkpoint into the structure of ``template``; return (header, state)."""
    header, payload = read_header(path)
    expected = _structure(jax.tree_util.tree_map(np.asarray, template))
    if header["structure"] != expected:
        raise CheckpointError(
            f"{path} holds a state of a different structure than this run expects (another "
            "algorithm, network size or env?). Resume with the config it was written with (see "
            "config.json in its run directory), or start a new run directory"
        )
    try:
        state_dict = serialization.msgpack_restore(payload)
        state = serialization.from_state_dict(template, state_dict)
    except Exception as e:  # noqa: BLE001 - msgpack raises many types on garbage
        raise CheckpointError(f"{path}: cannot decode checkpoint payload ({e})") from e
    # Shapes must match too (same structure, different sizes would fail later inside jit).
    for a, b in zip(jax.tree_util.tree_leaves(template), jax.tree_util.tree_leaves(state),
                    strict=True):
        if np.shape(a) != np.shape(b):
            raise CheckpointError(
                f"{path}: array of shape {np.shape(b)} where this run expects {np.shape(a)}; "
                "the checkpoint was written with a different config"
            )
    return header, state


def latest_checkpoint(directory: str | Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1][1] if found else None
