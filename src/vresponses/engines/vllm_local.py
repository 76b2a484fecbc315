"""The in-process vLLM engine (`AsyncLLM`), adapted to the narrow engine protocol."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from vresponses.engines.base import (
    NO_PLACEMENT,
    Constraint,
    EngineBusy,
    EngineDelta,
    EngineError,
    EngineRejected,
    ModelInfo,
    Placement,
    SamplingOptions,
    Tokenizer,
    TokenLogprob,
    TopLogprob,
)
from vresponses.engines.tokens import TokenBytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VllmOptions:
    """Engine options passed through from the command line, named as vLLM names them."""

    model: str
    served_model_name: str | None = None
    dtype: str = "auto"
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool = False
    max_num_seqs: int | None = None
    seed: int | None = None
    trust_remote_code: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The engine processes' nice value (engines/priority.py); not a vLLM option.
    nice: int = 0


class VllmEngine:
    """Runs `vllm.v1.engine.async_llm.AsyncLLM` in this process (its core runs in a child process)."""

    def __init__(self, llm: Any, info: ModelInfo, tokenizer: Tokenizer) -> None:
        self._llm = llm
        self.info = info
        self.tokenizer = tokenizer
        # Imported lazily so the rest of the server (and its unit tests) never needs vllm.
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        self._token_bytes = TokenBytes(cast(Any, tokenizer))
        self._sampling_params = SamplingParams
        self._tokens_prompt = TokensPrompt
        self._delta = RequestOutputKind.DELTA
        self._structured = StructuredOutputsParams

    @classmethod
    def start(cls, options: VllmOptions) -> VllmEngine:
        """Build the engine from options; blocks while vLLM loads the model."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        kwargs: dict[str, Any] = {
            "model": options.model,
            "dtype": options.dtype,
            "enforce_eager": options.enforce_eager,
            "tensor_parallel_size": options.tensor_parallel_size,
            "enable_prefix_caching": True,
            "trust_remote_code": options.trust_remote_code,
        }
        if options.served_model_name:
            kwargs["served_model_name"] = options.served_model_name
        for name in ("max_model_len", "gpu_memory_utilization", "kv_cache_memory_bytes", "max_num_seqs", "seed"):
            value = getattr(options, name)
            if value is not None:
                kwargs[name] = value
        kwargs.update(options.extra)
        args = AsyncEngineArgs(**kwargs)
        llm = AsyncLLM.from_engine_args(args)
        config = llm.model_config
        cache = llm.vllm_config.cache_config
        info = ModelInfo(
            name=options.served_model_name or options.model,
            max_model_len=int(config.max_model_len),
            created=int(time.time()),
            sampling_defaults=_sampling_defaults(config),
            max_num_seqs=int(llm.vllm_config.scheduler_config.max_num_seqs),
            kv_cache_tokens=int(cache.num_gpu_blocks * cache.block_size) if cache.num_gpu_blocks else None,
        )
        tokenizer = cast(Tokenizer, llm.get_tokenizer())
        return cls(llm, info, tokenizer)

    def _params(self, options: SamplingOptions) -> Any:
        structured = None
        if options.constraint is not None:
            structured = _structured(self._structured, options.constraint)
        return self._sampling_params(
            n=1,
            temperature=options.temperature,
            top_p=options.top_p,
            top_k=options.top_k,
            min_p=options.min_p,
            presence_penalty=options.presence_penalty,
            frequency_penalty=options.frequency_penalty,
            repetition_penalty=options.repetition_penalty,
            max_tokens=options.max_tokens,
            stop=list(options.stop) or None,
            logprobs=options.logprobs,
            seed=options.seed,
            structured_outputs=structured,
            output_kind=self._delta,
            skip_special_tokens=options.skip_special_tokens,
        )

    async def generate(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        placement: Placement = NO_PLACEMENT,
    ) -> AsyncIterator[EngineDelta]:
        """Stream deltas; vLLM aborts the request itself when this generator is closed early."""
        from vllm.exceptions import GracefulHTTPError, VLLMClientError

        params = self._params(options)
        prompt = self._tokens_prompt(prompt_token_ids=prompt_token_ids)
        if placement.cache_salt:
            prompt["cache_salt"] = placement.cache_salt
        want_logprobs = options.logprobs is not None
        try:
            async for out in self._llm.generate(prompt, params, request_id):
                completion = out.outputs[0]
                logprobs = _logprobs(completion, options.logprobs or 0, self._token_bytes) if want_logprobs else ()
                yield EngineDelta(
                    text=completion.text,
                    token_ids=completion.token_ids,
                    logprobs=logprobs,
                    finish_reason=completion.finish_reason if out.finished else None,
                    prompt_tokens=len(out.prompt_token_ids or prompt_token_ids),
                    cached_tokens=out.num_cached_tokens or 0,
                )
        except Exception as exc:
            translated = _translated(exc, VLLMClientError, GracefulHTTPError)
            if translated is exc:
                raise
            raise translated from exc

    async def abort(self, request_id: str) -> None:
        """Abort a request in the output processor and the engine core."""
        await self._llm.abort(request_id)

    async def healthy(self) -> bool:
        """Whether the engine core is alive."""
        if self._llm.errored:
            return False
        try:
            await self._llm.check_health()
        except Exception:
            return False
        return True

    def unfinished_requests(self) -> int:
        """Requests the output processor still tracks."""
        return int(self._llm.get_num_unfinished_requests())

    async def close(self) -> None:
        """Shut the engine core down."""
        self._llm.shutdown()
        # Drop the reference now: AsyncLLM.__del__ shuts down again, which fails during interpreter exit.
        del self._llm


def _translated(exc: Exception, client_error: type[Exception], http_error: type[Exception]) -> Exception:
    """vLLM's errors as the engine protocol's (also inside an exception group); anything else unchanged."""
    if isinstance(exc, ExceptionGroup):
        inner = next((e for e in exc.exceptions if isinstance(e, Exception)), None)
        translated = _translated(inner, client_error, http_error) if inner is not None else exc
        return exc if translated is inner else translated
    if isinstance(exc, client_error):
        return EngineRejected(str(exc))
    if isinstance(exc, http_error):
        status, message = int(getattr(exc, "http_status", 500)), str(getattr(exc, "message", exc))
        return EngineBusy(message) if status in (429, 503) else EngineError(message)
    if isinstance(exc, ValueError):
        return EngineRejected(str(exc))  # vLLM still raises bare ValueError for some invalid sampling inputs
    if type(exc).__name__ in ("EngineDeadError", "EngineGenerateError"):
        return EngineError(f"engine failed: {type(exc).__name__}")
    return exc


# Sampling values a model's generation_config.json may set that requests can leave unset.
SAMPLING_DEFAULTS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
)


def _sampling_defaults(config: Any) -> dict[str, float]:
    """The model's defaults as `vllm serve` applies them (vLLM reads generation_config.json for us)."""
    try:
        diff = config.get_diff_sampling_param()
    except Exception:  # an unreadable generation config: neutral defaults, as vLLM then uses
        log.warning("could not read the model's generation config; using neutral sampling defaults")
        return {}
    return {k: float(v) for k, v in diff.items() if k in SAMPLING_DEFAULTS and v is not None}


def _structured(factory: Any, constraint: Constraint) -> Any:
    if constraint.json is not None:
        return factory(json=json.dumps(constraint.json))
    return factory(structural_tag=constraint.structural_tag)


def _logprobs(completion: Any, k: int, raw: TokenBytes) -> tuple[TokenLogprob, ...]:
    positions = completion.logprobs
    if not positions:
        return ()
    result = []
    # In DELTA mode logprobs covers exactly this step's new tokens.
    for token_id, position in zip(completion.token_ids, positions, strict=False):
        chosen = position.get(token_id)
        # vLLM adds the chosen token beside the top k when it ranks lower; keep exactly the top k.
        ranked = sorted(
            ((tid, lp) for tid, lp in position.items() if lp.rank is not None and lp.rank <= k),
            key=lambda pair: pair[1].rank,
        )
        top = tuple(TopLogprob(lp.decoded_token or "", lp.logprob, raw(tid)) for tid, lp in ranked[:k])
        result.append(
            TokenLogprob(
                token=(chosen.decoded_token or "") if chosen else "",
                logprob=chosen.logprob if chosen else -9999.0,
                top=top,
                raw=raw(token_id),
            )
        )
    return tuple(result)
