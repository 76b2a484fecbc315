"""GGUF → Hugging Face folder conversion and its verification, with transformers, fully offline."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# ChatML, which SmolLM2-Instruct was trained on: a turn ends with <|im_end|>, so that token is
# what generation must stop at (the GGUF's base eos would be <|endoftext|> for a base model).
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

# Files a loadable folder must hold; the rest (generation_config.json, chat_template.jinja) are
# checked by `verify_folder` through the loaders themselves.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

VERIFY_SYSTEM = "You are a concise assistant."
VERIFY_QUESTION = "What is the capital of France?"


class ModelPrepareError(RuntimeError):
    """The default model could not be prepared; the message says why and what to do."""


class ModelVerificationError(ModelPrepareError):
    """The converted folder does not load, render its chat template or generate text."""


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' tqdm bars for the block, so they don't fight with our own progress display."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    # The legacy GGUF dequantizer imports tqdm.auto directly, bypassing the switch above.
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original_tqdm = getattr(gguf_utils, "tqdm", None)
    if original_tqdm is not None:
        gguf_utils.tqdm = functools.partial(original_tqdm, disable=True)
    try:
        yield
    finally:
        if original_tqdm is not None:
            gguf_utils.tqdm = original_tqdm
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_tokenizer(gguf: Path) -> Any:
    """The tokenizer rebuilt from the GGUF metadata, with the model's own chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    template = tokenizer.chat_template
    if not template or IM_START not in template:
        raise ModelPrepareError(f"{gguf.name} carries no ChatML chat template (tokenizer.chat_template)")
    if tokenizer.convert_tokens_to_ids(IM_END) == tokenizer.unk_token_id:
        raise ModelPrepareError(f"{gguf.name} has no {IM_END} token in its vocabulary")
    # The instruct GGUF already says so; set it anyway so a turn always ends generation.
    tokenizer.eos_token = IM_END
    return tokenizer


def load_model(gguf: Path) -> Any:
    """The model with every GGUF block dequantized into dense float32 weights."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    # Without dequantize=True this transformers keeps the weights in packed GGUF blocks, and such a
    # model refuses save_pretrained ("not serializable"); dense float32 is what vLLM needs anyway.
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
        local_files_only=True,
    )
    if getattr(model.config, "quantization_config", None) is not None:
        # vLLM would read this as a GGUF-quantized checkpoint and fail on plain safetensors.
        raise ModelPrepareError("the dequantized model still carries a quantization_config")
    return model


# The model card's recommended sampling for SmolLM2-Instruct, and a bound on output: the 135M model often never
# emits its end token, and unbounded it would run to the end of its context on every such turn. They go into
# generation_config.json, where vLLM and the server read a model's defaults.
SAMPLING_DEFAULTS = {"do_sample": True, "temperature": 0.2, "top_p": 0.9, "max_new_tokens": 512}


def save_folder(model: Any, tokenizer: Any, out: Path, name: str) -> None:
    """Write `model` (safetensors, float32) and `tokenizer` into the empty folder `out`."""
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    # Both the config and generation_config.json: vLLM stops on generation_config's eos ids.
    model.config.eos_token_id = im_end
    model.generation_config.eos_token_id = im_end
    model.generation_config.pad_token_id = im_end
    model.generation_config.update(**SAMPLING_DEFAULTS)
    # The GGUF loader copies "general.name" (a training-run label) here; name the model plainly.
    model.config._model_name_or_path = name
    # The GGUF path leaves this unbounded; the trained context length is the honest limit.
    tokenizer.model_max_length = int(model.config.max_position_embeddings)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    missing = [f for f in REQUIRED_FILES if not (out / f).is_file()]
    if missing:
        raise ModelPrepareError(f"save_pretrained did not write {', '.join(missing)} into {out}")


def verify_folder(folder: Path) -> str:
    """Load `folder` back, render a chat and generate greedily; return the reply or raise ModelVerificationError."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as error:
        raise ModelVerificationError(f"the tokenizer does not load from {folder}: {error}") from error
    messages = [
        {"role": "system", "content": VERIFY_SYSTEM},
        {"role": "user", "content": VERIFY_QUESTION},
    ]
    expected = (
        f"{IM_START}system\n{VERIFY_SYSTEM}{IM_END}\n{IM_START}user\n{VERIFY_QUESTION}{IM_END}\n{IM_START}assistant\n"
    )
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as error:
        raise ModelVerificationError(f"the chat template does not render: {error}") from error
    if rendered != expected:
        raise ModelVerificationError(f"the chat template renders {rendered!r}, expected ChatML {expected!r}")

    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    if tokenizer.eos_token_id != im_end:
        raise ModelVerificationError(f"the tokenizer's eos is {tokenizer.eos_token!r}, expected {IM_END}")
    eos = GenerationConfig.from_pretrained(str(folder), local_files_only=True).eos_token_id
    if im_end not in (eos if isinstance(eos, list) else [eos]):
        raise ModelVerificationError(f"generation_config.json eos_token_id is {eos}, expected {im_end} ({IM_END})")

    try:
        model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
    except Exception as error:
        raise ModelVerificationError(f"the model does not load from {folder}: {error}") from error
    prompt = tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
    try:
        with torch.inference_mode():
            output = model.generate(
                **prompt, max_new_tokens=8, do_sample=False, temperature=None, top_p=None, pad_token_id=im_end
            )
    except Exception as error:
        raise ModelVerificationError(f"greedy generation failed: {error}") from error
    reply = tokenizer.decode(output[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    if not reply:
        raise ModelVerificationError(f"greedy generation for {VERIFY_QUESTION!r} produced no text")
    return reply
