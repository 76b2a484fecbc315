"""The prefix cache is shared within a tenant and never across tenants (no probing another key's prompts)."""

from __future__ import annotations

from gradient import Gradient


def test_another_key_gets_no_cached_tokens_from_my_prompt(client: Gradient, other_client: Gradient) -> None:
    # A prompt no other test sends, long enough to fill many cache blocks.
    prompt = "Tenant cache probe. " + " ".join(f"Clause {i}: the quartz heron files report {i * 7}." for i in range(40))
    first = client.responses.create(model="SmolLM2-135M-Instruct", input=prompt, max_output_tokens=1)
    theirs = other_client.responses.create(model="SmolLM2-135M-Instruct", input=prompt, max_output_tokens=1)
    mine = client.responses.create(model="SmolLM2-135M-Instruct", input=prompt, max_output_tokens=1)
    assert first.usage is not None and theirs.usage is not None and mine.usage is not None
    assert first.usage.input_tokens > 200
    assert theirs.usage.input_tokens_details.cached_tokens == 0
    assert mine.usage.input_tokens_details.cached_tokens > 0.5 * mine.usage.input_tokens
