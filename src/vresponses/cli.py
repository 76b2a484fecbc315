"""Command line: `vresponses serve` and `vresponses models prepare`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vresponses.engines.remote import RemoteOptions
from vresponses.engines.router import Policy
from vresponses.engines.vllm_local import VllmOptions
from vresponses.settings import Settings, default_home

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The Responses API on a vLLM engine.")
models_app = typer.Typer(no_args_is_help=True, help="Manage the embedded default model.")
app.add_typer(models_app, name="models")
console = Console(stderr=True)
HOME = default_home()


def _engine_environment() -> None:
    # Defaults for the engine on this kind of machine; a value the user set wins.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


@models_app.command("prepare")
def prepare(
    home: Annotated[Path, typer.Option(help="Data directory (models, database).")] = HOME,
) -> None:
    """Convert the embedded SmolLM2-135M-Instruct GGUF into a Hugging Face folder, once, offline."""
    _engine_environment()
    path = _prepare(home)
    console.print(f"[green]ready[/green] {path}")


def _prepare(home: Path) -> Path:
    from vresponses.models.prepare import ModelPrepareError, is_prepared, prepare_default_model
    from vresponses.models.progress import rich_progress

    try:
        if is_prepared(home):
            return prepare_default_model(home)
        console.print("Preparing the embedded default model (once, offline)...")
        with rich_progress(console) as progress:
            return prepare_default_model(home, progress)
    except ModelPrepareError as exc:
        console.print(f"[red]could not prepare the default model:[/red] {exc}")
        raise typer.Exit(2) from None


def _parse_extra(pairs: list[str]) -> dict[str, object]:
    import json

    extra: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"--engine-arg takes KEY=VALUE, got {pair!r}")
        try:
            extra[key.replace("-", "_")] = json.loads(value)
        except ValueError:
            extra[key.replace("-", "_")] = value
    return extra


@app.command()
def serve(
    model: Annotated[str | None, typer.Option(help="A local Hugging Face folder or a hub id.")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="The model id clients send.")] = None,
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    api_key: Annotated[list[str] | None, typer.Option(help="Accepted bearer key; repeat for several.")] = None,
    home: Annotated[Path, typer.Option(help="Data directory (models, database).")] = HOME,
    store: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://...")] = None,
    tool_call_parser: Annotated[str, typer.Option(help="hermes, llama3_json, mistral, ...")] = "hermes",
    reasoning_parser: Annotated[str | None, typer.Option(help="deepseek_r1 or qwen3")] = None,
    dtype: Annotated[str, typer.Option(help="auto (float32 on CPU), float32, bfloat16, ...")] = "auto",
    max_model_len: Annotated[int | None, typer.Option()] = None,
    tensor_parallel_size: Annotated[int, typer.Option()] = 1,
    gpu_memory_utilization: Annotated[float | None, typer.Option()] = None,
    enforce_eager: Annotated[bool, typer.Option(help="Skip graph compilation: faster start.")] = False,
    max_num_seqs: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    trust_remote_code: Annotated[bool, typer.Option()] = False,
    engine_arg: Annotated[list[str] | None, typer.Option(help="Any other vLLM engine argument, KEY=VALUE.")] = None,
    engine_url: Annotated[
        list[str] | None, typer.Option(help="A vLLM replica to generate on instead of in-process; repeat for several.")
    ] = None,
    routing: Annotated[Policy, typer.Option(help="How requests are spread over --engine-url replicas.")] = (
        Policy.CACHE_AWARE
    ),
    engine_api_key: Annotated[str | None, typer.Option(help="The replicas' --api-key.")] = None,
    max_background_jobs: Annotated[int, typer.Option()] = 16,
    retention_max_age_days: Annotated[float, typer.Option(help="0 keeps responses forever.")] = 30.0,
    retention_max_rows: Annotated[int, typer.Option(help="0 means no row limit.")] = 1_000_000,
    max_body_mb: Annotated[float, typer.Option(help="Largest accepted request body.")] = 8.0,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """Serve POST /v1/responses on a vLLM engine (the embedded default model when --model is not given)."""
    _engine_environment()
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    name = served_model_name
    if model is None:
        from vresponses.models.prepare import DEFAULT_MODEL_NAME

        model = str(_prepare(home))
        name = name or DEFAULT_MODEL_NAME
    if dtype == "auto" and not engine_url and not _cuda():
        dtype = "float32"  # bf16 on AVX2-only CPUs is slow and once produced garbage
    engine = VllmOptions(
        model=model,
        served_model_name=name,
        dtype=dtype,
        max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        enforce_eager=enforce_eager,
        max_num_seqs=max_num_seqs,
        seed=seed,
        trust_remote_code=trust_remote_code,
        extra=_parse_extra(engine_arg or []),
    )
    remote = None
    if engine_url:
        remote = RemoteOptions(
            urls=tuple(engine_url),
            model=model,
            served_model_name=name,
            routing=routing,
            api_key=engine_api_key,
            trust_remote_code=trust_remote_code,
        )
    settings = Settings(
        engine=engine,
        remote=remote,
        host=host,
        port=port,
        api_keys=tuple(api_key or ()),
        home=home,
        store_url=store,
        tool_call_parser=tool_call_parser,
        reasoning_parser=reasoning_parser,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_background_jobs=max_background_jobs,
        retention_max_age_seconds=retention_max_age_days * 86400 or None,
        retention_max_rows=retention_max_rows or None,
    )
    run(settings, log_level)


def run(settings: Settings, log_level: str = "info") -> None:
    """Serve until interrupted."""
    import uvicorn

    from vresponses.app import create_app
    from vresponses.engines.base import Engine

    def ready(engine: Engine) -> None:
        console.print(f"\n[bold green]vresponses is ready[/bold green] at http://{settings.host}:{settings.port}/v1")
        console.print(f"  model: [bold]{engine.info.name}[/bold] (context {engine.info.max_model_len} tokens)")
        if settings.api_keys:
            console.print(f"  key:   [bold]{settings.api_keys[0]}[/bold]")
        else:
            console.print("  key:   none required (pass --api-key to require one)")

    uvicorn.run(
        create_app(settings, on_ready=ready),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
