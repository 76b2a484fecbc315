"""Command line: `vresponses serve` and `vresponses models prepare`."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from vresponses.engines.remote import RemoteOptions
from vresponses.engines.router import Policy
from vresponses.engines.vllm_local import VllmOptions
from vresponses.pipeline.admission import AdmissionLimits
from vresponses.pipeline.limits import Limits
from vresponses.pipeline.ratelimit import KeyLimits
from vresponses.settings import Settings, default_home, env_api_keys

if TYPE_CHECKING:
    from vresponses.websearch import SearchProvider

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


def _kv_cache_bytes(
    given: str | None,
    cuda: bool,
    model: str,
    dtype: str,
    max_model_len: int | None,
    max_num_seqs: int | None,
    gpu_memory_utilization: float | None,
    extra: dict[str, object],
) -> int | None:
    """The KV-cache size to pass to vLLM: the user's, else on CPU one that fits this machine, else vLLM's own."""
    from vresponses.engines.memory import NotEnoughMemory, parse_size, plan_for_model

    if given is not None:
        try:
            return parse_size(given)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--kv-cache-memory") from None
    user_sized = gpu_memory_utilization is not None or "kv_cache_memory_bytes" in extra
    if cuda or user_sized or os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return None  # vLLM's defaults on GPU; the user's own choice anywhere
    try:
        plan = plan_for_model(model, dtype, max_model_len, max_num_seqs)
    except NotEnoughMemory as exc:
        console.print(f"[red]not enough memory:[/red] {exc}")
        raise typer.Exit(2) from None
    logging.getLogger("vresponses").info("%s", plan.describe())
    return plan.bytes


@app.command()
def serve(
    model: Annotated[str | None, typer.Option(help="A local Hugging Face folder or a hub id.")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="The model id clients send.")] = None,
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="Accepted bearer key, or sha256:<hex> of one; repeat for several. Keys in VRESPONSES_API_KEY "
            "(space-separated) are accepted too.",
        ),
    ] = None,
    home: Annotated[Path, typer.Option(help="Data directory (models, database).")] = HOME,
    store: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://...")] = None,
    dialect: Annotated[
        str, typer.Option(help="The dialect under /v1: gradient or openai (both are always under /<name>/v1).")
    ] = "gradient",
    tool_call_parser: Annotated[str, typer.Option(help="hermes, llama3_json, mistral, ...")] = "hermes",
    reasoning_parser: Annotated[str | None, typer.Option(help="deepseek_r1 or qwen3")] = None,
    dtype: Annotated[str, typer.Option(help="auto (float32 on CPU), float32, bfloat16, ...")] = "auto",
    max_model_len: Annotated[int | None, typer.Option()] = None,
    tensor_parallel_size: Annotated[int, typer.Option()] = 1,
    gpu_memory_utilization: Annotated[
        float | None, typer.Option(help="GPU: vLLM's share of GPU memory. CPU: pass it to use vLLM's own sizing.")
    ] = None,
    kv_cache_memory: Annotated[
        str | None,
        typer.Option(help="KV-cache size, e.g. 2GiB. Default on CPU: 25% of available memory, at most 8 GiB."),
    ] = None,
    enforce_eager: Annotated[bool, typer.Option(help="Skip graph compilation: faster start.")] = False,
    engine_nice: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=19,
            help="The engine processes' CPU priority below the server's (nice). Default: 10 on CPU, 0 on GPU.",
        ),
    ] = None,
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
    max_background_jobs_per_key: Annotated[int, typer.Option(help="One key's share of them.")] = 8,
    retention_max_age_days: Annotated[float, typer.Option(help="0 keeps responses forever.")] = 30.0,
    retention_max_rows: Annotated[int, typer.Option(help="0 means no row limit.")] = 1_000_000,
    retention_max_rows_per_key: Annotated[int, typer.Option(help="0 means no per-key limit.")] = 100_000,
    limit: Annotated[
        list[str] | None, typer.Option(help="A request limit, NAME=VALUE (see SECURITY.md), e.g. max_input_items=4096.")
    ] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest accepted request body.")] = 8.0,
    web_search: Annotated[
        str | None,
        typer.Option(help="Where web_search searches: searxng=URL, ddgs[=BACKENDS], brave, tavily or local=PATH."),
    ] = None,
    web_search_timeout: Annotated[float, typer.Option(help="Seconds one web search may take.")] = 10.0,
    web_search_max_calls: Annotated[int, typer.Option(min=1, help="Web searches one response may make.")] = 3,
    log_level: Annotated[str, typer.Option()] = "info",
    # -- resilience: keys, admission, limits, shutdown and engine restarts --
    api_key_file: Annotated[
        Path | None, typer.Option(help="Keys, one per line (plain or sha256:<hex>); re-read on change and SIGHUP.")
    ] = None,
    allow_unauthenticated: Annotated[
        bool, typer.Option(help="Serve without any key on a non-loopback address.")
    ] = False,
    max_concurrent_requests: Annotated[
        int | None, typer.Option(help="Requests in the engine before 429 [default: 2 x the engine's batch].")
    ] = None,
    max_queued_prompt_tokens: Annotated[
        int | None, typer.Option(help="Prompt tokens awaiting the engine before 429 [default: the KV cache].")
    ] = None,
    max_prompt_tokens: Annotated[int | None, typer.Option(help="Largest prompt of one request, in tokens.")] = None,
    request_timeout: Annotated[float, typer.Option(help="Seconds one request may run; 0: no limit.")] = 600.0,
    rate_limit_rpm: Annotated[int, typer.Option(help="Requests per minute per key; 0: no limit.")] = 0,
    max_concurrent_per_key: Annotated[int, typer.Option(help="Requests in flight per key; 0: no limit.")] = 0,
    drain_timeout: Annotated[float, typer.Option(help="Seconds SIGTERM lets responses finish.")] = 30.0,
    engine_restarts: Annotated[
        int, typer.Option(help="Engine restarts allowed per 10 minutes; 0: exit (code 1) when it dies.")
    ] = 3,
) -> None:
    """Serve POST /v1/responses on a vLLM engine (the embedded default model when --model is not given)."""
    _engine_environment()
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if dialect not in ("gradient", "openai"):
        raise typer.BadParameter("use gradient or openai", param_hint="--dialect")
    keys = (*(api_key or ()), *env_api_keys())
    _check_keys(keys, api_key_file, host, allow_unauthenticated)
    name = served_model_name
    if model is None:
        from vresponses.models.prepare import DEFAULT_MODEL_NAME

        model = str(_prepare(home))
        name = name or DEFAULT_MODEL_NAME
    cuda = _cuda()
    if dtype == "auto" and not engine_url and not cuda:
        dtype = "float32"  # bf16 on AVX2-only CPUs is slow and once produced garbage
    extra = _parse_extra(engine_arg or [])
    # Replicas size their own KV cache; this process holds only the tokenizer.
    kv_bytes = (
        None
        if engine_url
        else _kv_cache_bytes(
            kv_cache_memory, cuda, model, dtype, max_model_len, max_num_seqs, gpu_memory_utilization, extra
        )
    )
    engine = VllmOptions(
        model=model,
        served_model_name=name,
        dtype=dtype,
        max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        kv_cache_memory_bytes=kv_bytes,
        enforce_eager=enforce_eager,
        max_num_seqs=max_num_seqs,
        seed=seed,
        trust_remote_code=trust_remote_code,
        extra=extra,
        # On CPU the engine's threads take every core; the server must still answer at once (engines/priority.py).
        nice=(0 if cuda else 10) if engine_nice is None else engine_nice,
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
        api_keys=keys,
        home=home,
        store_url=store,
        dialect=dialect,
        tool_call_parser=tool_call_parser,
        reasoning_parser=reasoning_parser,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_background_jobs=max_background_jobs,
        max_background_jobs_per_key=max_background_jobs_per_key,
        retention_max_age_seconds=retention_max_age_days * 86400 or None,
        retention_max_rows=retention_max_rows or None,
        retention_max_rows_per_key=retention_max_rows_per_key or None,
        limits=_parse_limits(limit or []),
        web_search=web_search,
        web_search_timeout=web_search_timeout,
        web_search_max_calls=web_search_max_calls,
        api_key_file=api_key_file,
        allow_unauthenticated=allow_unauthenticated,
        admission=AdmissionLimits(
            max_concurrent_requests, max_queued_prompt_tokens, max_prompt_tokens, request_timeout or None
        ),
        key_limits=KeyLimits(rate_limit_rpm or None, max_concurrent_per_key or None),
        drain_timeout=drain_timeout,
        engine_restarts=engine_restarts,
    )
    run(settings, log_level)


def _parse_limits(pairs: list[str]) -> Limits:
    """Limits with NAME=VALUE overrides; a bad name or value is a usage error naming the valid names."""
    names = {f.name for f in dataclasses.fields(Limits)}
    values: dict[str, int] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in names or not value.isdigit():
            raise typer.BadParameter(f"{pair!r}: use NAME=INTEGER with NAME one of {', '.join(sorted(names))}")
        values[name] = int(value)
    return Limits(**values)


def _search_provider(settings: Settings) -> SearchProvider | None:
    """The --web-search provider, made before the engine starts so a bad value fails at once."""
    if settings.web_search is None:
        return None
    from vresponses.websearch import SearchConfigError, make_provider

    try:
        return make_provider(settings.web_search, env=settings.search_keys, timeout=settings.web_search_timeout)
    except SearchConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--web-search") from None


def _check_keys(keys: tuple[str, ...], key_file: Path | None, host: str, allow_unauthenticated: bool) -> None:
    from vresponses.api.keys import check_sources

    try:
        warning = check_sources(keys, key_file, host, allow_unauthenticated)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if warning:
        console.print(f"[bold red]warning:[/bold red] {warning}")


def run(settings: Settings, log_level: str = "info") -> None:
    """Serve until stopped (SIGTERM drains first); exit with the server's exit code."""
    from vresponses.app import create_app
    from vresponses.engines.base import Engine
    from vresponses.server import serve

    search = _search_provider(settings)

    def ready(engine: Engine) -> None:
        console.print(f"\n[bold green]vresponses is ready[/bold green] at http://{settings.host}:{settings.port}/v1")
        console.print(f"  model: [bold]{engine.info.name}[/bold] (context {engine.info.max_model_len} tokens)")
        # Keys are never printed or logged: the operator who configured them has them.
        if settings.api_keys or settings.api_key_file:
            console.print("  keys:  required (Authorization: Bearer <key>)")
        else:
            console.print("  keys:  none required (loopback only; pass --api-key to require one)")

    code = serve(create_app(settings, on_ready=ready, search_provider=search), settings.host, settings.port, log_level)
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
