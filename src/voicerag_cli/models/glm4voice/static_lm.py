"""Fast decoding of GLM-4-Voice-9B held as transformers' native `GlmForCausalLM`: a preallocated
KV cache and, on CUDA, every one-token step (all 40 layers and the sampling) replayed from one
CUDA graph.

Why not `model.generate`: at batch size one a 9B model's step only has to read its ~18 GB of
weights (5.35 ms on an H200, measured), but eager transformers spends 25-47 ms/token launching
~2,000 small kernels from Python. The first audio of an answer waits for 13 text + 10 speech
tokens, so per-token overhead is most of the latency. Here a step takes 6.3 ms
(benchmarks/glm4voice_gpu.py).

The checkpoint's own weights and embedding/LM-head modules do the arithmetic, layer by layer in
the functions below (RMSNorm, rotary, gated MLP as transformers' GLM computes them; tests compare
logits and greedy answers with transformers). What differs is only how: q, k and v are one
fused product over their concatenated weights (the model's own projections become views of it);
queries and keys are rotated together from a precomputed angle table (GLM: interleaved pairs on
the first half of each head); a new token attends over the cache under a position mask, the 16
query heads sharing a KV head as one group, as two matrix products (see `attend_one`); sampling
(temperature, nucleus, exponential race) runs on the device, so a graph can hold it. With
`compile`, the two halves of a layer around the cache write are compiled by torch.compile once
for all layers before the graph records them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

CAPACITY_STEP = 1024  # the cache grows in whole steps, so a new graph is rarely needed


@dataclass(frozen=True)
class SamplingParams:
    temperature: float
    top_p: float
    top_k: int = 0  # 0: no top-k cut


def filtered(logits: torch.Tensor, params: SamplingParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampling distribution over the tokens in descending order of logit: probabilities
    [1, V] (zero outside the kept set) and the token order [1, V]. Same steps and order as
    transformers' `generate` warpers: temperature, then top-k, then top-p on what is left."""
    ordered, order = (logits.float() / params.temperature).sort(dim=-1, descending=True)
    if 0 < params.top_k < ordered.shape[-1]:
        ordered[..., params.top_k :] = float("-inf")
    probs = ordered.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
    probs = probs.masked_fill(before > params.top_p, 0.0)  # the smallest set reaching top_p stays
    return probs, order


def sample(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """One token id [1] from logits [1, V]: greedy at temperature 0, else sampled from `filtered`.
    Sampling uses the exponential race (argmax p/E with E ~ Exp(1) picks i with probability p_i),
    which needs no host round trip and so can live inside a CUDA graph."""
    if params.temperature <= 0:
        return logits.float().argmax(dim=-1)
    probs, order = filtered(logits, params)
    race = probs / torch.empty_like(probs).exponential_()
    return order.gather(-1, race.argmax(dim=-1, keepdim=True)).squeeze(-1)


@dataclass(frozen=True)
class LayerWeights:
    """One GLM decoder layer's tensors, as the functions below take them."""

    input_norm: torch.Tensor
    qkv: torch.Tensor  # [q; k; v] rows
    qkv_bias: torch.Tensor | None
    out: torch.Tensor
    post_norm: torch.Tensor
    gate_up: torch.Tensor  # [gate; up] rows, as transformers' GlmMLP
    down: torch.Tensor


def fuse_qkv(attention: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One [q; k; v] weight (and bias) for a GLM attention layer, the three projections' own
    parameters becoming views of it: a token costs one matrix-vector product instead of three, no
    memory is duplicated, and the model's own forward pass is unchanged."""
    parts = (attention.q_proj, attention.k_proj, attention.v_proj)
    weight = torch.cat([part.weight.detach() for part in parts])
    bias = None if parts[0].bias is None else torch.cat([part.bias.detach() for part in parts])
    start = 0
    for part in parts:
        rows = part.weight.shape[0]
        part.weight = torch.nn.Parameter(weight[start : start + rows], requires_grad=False)
        if bias is not None:
            part.bias = torch.nn.Parameter(bias[start : start + rows], requires_grad=False)
        start += rows
    return weight, bias


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' GlmRMSNorm: normalised in float32, the weight applied after casting back."""
    wide = x.float()
    return weight * (wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """GLM's rotary embedding: interleaved pairs (x0, x1), (x2, x3)... of the first `rotary`
    dims of each head turned by the angles in cos/sin [n, rotary]; x is [b, heads, n, head_dim]."""
    rotary = cos.shape[-1]
    head, rest = x[..., :rotary], x[..., rotary:]
    turned = torch.stack((-head[..., 1::2], head[..., 0::2]), dim=-1).flatten(-2)
    return torch.cat([head * cos + turned * sin, rest], dim=-1)


def attention_inputs(
    x: torch.Tensor, layer: LayerWeights, cos: torch.Tensor, sin: torch.Tensor, eps: float, heads: int, kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first half of a layer, up to the cache: queries, keys (both rotated) and values."""
    batch, length, _ = x.shape
    qkv = F.linear(rms_norm(x, layer.input_norm, eps), layer.qkv, layer.qkv_bias)
    qkv = qkv.view(batch, length, heads + 2 * kv_heads, -1).transpose(1, 2)
    qk = rotate(qkv[:, : heads + kv_heads], cos, sin)  # queries and keys turned together
    return qk[:, :heads], qk[:, heads:], qkv[:, heads + kv_heads :]


def attend_one(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """One new token's attention over the whole cache, later slots masked out: q [1, H, 1, D],
    keys/values [1, KV, capacity, D] -> [1, 1, H * D]. The query heads sharing a KV head attend
    as one group (the cache is never expanded), as two matrix products with the softmax between:
    they split the work over the cache's length, where a fused attention kernel would run the
    2 groups x 16 heads as only 2 thread blocks (it splits work by heads and query rows)."""
    kv_heads, group, dim = keys.shape[1], q.shape[1] // keys.shape[1], q.shape[-1]
    grouped = q.reshape(1, kv_heads, group, dim)
    scores = (grouped @ keys.transpose(-1, -2)).float() * dim**-0.5
    weights = scores.masked_fill(~visible, float("-inf")).softmax(dim=-1).to(values.dtype)
    return (weights @ values).reshape(1, 1, kv_heads * group * dim)


def layer_output(
    x: torch.Tensor, attended: torch.Tensor, layer: LayerWeights, eps: float, activation: Any
) -> torch.Tensor:
    """The second half of a layer, after attention: output projection, residual, gated MLP."""
    x = x + F.linear(attended, layer.out)
    gate, up = F.linear(rms_norm(x, layer.post_norm, eps), layer.gate_up).chunk(2, dim=-1)
    return x + F.linear(up * activation(gate), layer.down)


def attend_and_output(
    x: torch.Tensor,
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    visible: torch.Tensor,
    layer: LayerWeights,
    eps: float,
    activation: Any,
) -> torch.Tensor:
    """A one-token step's second half: attention over the (already written) cache, then the rest
    of the layer."""
    return layer_output(x, attend_one(q, keys, values, visible), layer, eps, activation)


class StaticGlmDecoder:
    def __init__(self, model: Any, device: str, graphs: bool | None = None, compile: bool = False) -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.group = self.heads // self.kv_heads
        self.eps = float(config.rms_norm_eps)
        self.dtype = model.lm_head.weight.dtype
        self.layers = []
        for layer in model.model.layers:
            qkv, qkv_bias = fuse_qkv(layer.self_attn)
            self.layers.append(
                LayerWeights(
                    layer.input_layernorm.weight,
                    qkv,
                    qkv_bias,
                    layer.self_attn.o_proj.weight,
                    layer.post_attention_layernorm.weight,
                    layer.mlp.gate_up_proj.weight,
                    layer.mlp.down_proj.weight,
                )
            )
        self.activation = model.model.layers[0].mlp.activation_fn
        # The two halves of a layer around the cache write, compiled once for a one-token step
        # and shared by all layers: torch.compile fuses their ~40 small kernels (norms, rotary,
        # softmax, residuals), which at batch size one cost more than the matrix products; the
        # cache write stays outside, in place.
        self.compiled = compile
        self._step_halves = (
            (
                torch.compile(attention_inputs, fullgraph=True, dynamic=False),
                torch.compile(attend_and_output, fullgraph=True, dynamic=False),
            )
            if compile
            else (attention_inputs, attend_and_output)
        )
        self.capacity = 0
        self.keys = self.values = self.cos = self.sin = self.slots = torch.empty(0)
        self.step_ids = self.step_position = torch.empty(0, dtype=torch.long)
        self._graphs: dict[SamplingParams | None, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    # --- the cache -------------------------------------------------------------------------

    def reserve(self, length: int) -> None:
        """Room for `length` positions (rounded up); reallocating drops the captured graphs."""
        if length <= self.capacity:
            return
        limit = self.model.config.max_position_embeddings
        capacity = min(limit, -(-length // CAPACITY_STEP) * CAPACITY_STEP)
        if capacity < length:
            raise ValueError(f"prompt and answer need {length} positions; the model has {limit}")
        layers = self.model.config.num_hidden_layers
        shape = (layers, 1, self.kv_heads, capacity, self.head_dim)
        self._graphs.clear()
        self.keys = self.values = torch.empty(0)  # free the old cache before taking the new one
        self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)
        inv_freq = self.model.model.rotary_emb.inv_freq.float().to(self.device)
        angles = torch.arange(capacity, device=self.device, dtype=torch.float32)[:, None] * inv_freq[None]
        # GLM rotates interleaved pairs (x0, x1), (x2, x3)... of the first `rotary` dims.
        self.cos = angles.cos().repeat_interleave(2, dim=-1).to(self.dtype)
        self.sin = angles.sin().repeat_interleave(2, dim=-1).to(self.dtype)
        self.slots = torch.arange(capacity, device=self.device)
        self.step_ids = torch.zeros(1, 1, dtype=torch.long, device=self.device)
        self.step_position = torch.zeros(1, dtype=torch.long, device=self.device)
        self.capacity = capacity

    # --- the model ---------------------------------------------------------------------------

    def logits(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Logits [1, V] of the last of `ids` [1, n] at `positions` [n], writing their keys and
        values into the cache. n > 1 is the prompt, from position 0."""
        length = ids.shape[1]
        first, second = self._step_halves if length == 1 else (attention_inputs, None)
        cos, sin = self.cos[positions], self.sin[positions]
        visible = (self.slots <= positions[-1]).view(1, 1, 1, -1)
        x = self.model.model.embed_tokens(ids)
        for index, layer in enumerate(self.layers):
            q, k, v = first(x, layer, cos, sin, self.eps, self.heads, self.kv_heads)
            keys, values = self.keys[index], self.values[index]
            keys.index_copy_(2, positions, k)
            values.index_copy_(2, positions, v)
            if second is not None:  # one new token over the whole cache
                x = second(x, q, keys, values, visible, layer, self.eps, self.activation)
                continue
            # the prompt: causal attention within itself
            group = self.group
            out = F.scaled_dot_product_attention(
                q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), is_causal=True
            )
            attended = out.transpose(1, 2).reshape(1, length, self.heads * self.head_dim)
            x = layer_output(x, attended, layer, self.eps, self.activation)
        final = self.model.model.norm
        return self.model.lm_head(rms_norm(x[:, -1:], final.weight, final.variance_epsilon))[:, 0]

    def _step(self, params: SamplingParams | None) -> torch.Tensor:
        """One decoding step on the static buffers: the next token replaces `step_ids` and the
        position advances. Without `params` it only leaves the logits (for processors)."""
        logits = self.logits(self.step_ids, self.step_position)
        if params is None:
            return logits
        token = sample(logits, params)
        self.step_ids.copy_(token.view(1, 1))
        self.step_position.add_(1)
        return logits

    def _graph(self, params: SamplingParams | None) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        if params not in self._graphs:
            # Warm-up and capture write keys/values at the last slot, which an answer reaches (and
            # overwrites) only as its very last token; the pending token and position are kept.
            pending = (self.step_ids.clone(), self.step_position.clone())
            if self.compiled:  # compile on the default stream, outside the capture
                self.step_position.fill_(self.capacity - 1)
                self._step(params)
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self.step_position.fill_(self.capacity - 1)
                    self._step(params)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            self.step_position.fill_(self.capacity - 1)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                logits = self._step(params)
            self.step_ids.copy_(pending[0])
            self.step_position.copy_(pending[1])
            self._graphs[params] = (graph, logits)
        return self._graphs[params]

    # --- generation ----------------------------------------------------------------------------

    def prepare(self, params: SamplingParams, length: int) -> None:
        """Allocate the cache and capture the step graph ahead of the first answer."""
        self.reserve(length)
        if self.graphs:
            with torch.inference_mode():
                self._graph(params)

    @torch.inference_mode()
    def generate(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        max_new_tokens: int,
        stop_ids: Sequence[int],
        on_token: Callable[[int], None],
        processors: Any = None,
    ) -> None:
        """Prefill the prompt, then decode until a stop id or `max_new_tokens`, handing each id to
        `on_token` as soon as it exists. `processors` (transformers logits processors: tests and
        benchmarks) run between the graphed forward pass and sampling."""
        total = len(prompt_ids) + max_new_tokens
        self.reserve(total)
        ids = torch.tensor([list(prompt_ids)], device=self.device)
        history = torch.zeros(1, total, dtype=torch.long, device=self.device) if processors is not None else None
        if history is not None:
            history[0, : len(prompt_ids)] = ids[0]
        logits = self.logits(ids, self.slots[: len(prompt_ids)])
        position = len(prompt_ids)
        mode = None if processors is not None else params
        stops = set(stop_ids)
        for generated in range(max_new_tokens):
            if history is not None:
                logits = processors(history[:, :position], logits)
            if generated == 0 or processors is not None:  # sample outside the graph
                token = sample(logits, params)
                self.step_ids.copy_(token.view(1, 1))
                self.step_position.fill_(position)
            value = int(self.step_ids.item())
            if history is not None:
                history[0, position] = value
            on_token(value)
            position += 1
            if value in stops or generated + 1 == max_new_tokens:
                return
            logits = self._advance(mode)

    def _advance(self, mode: SamplingParams | None) -> torch.Tensor:
        if self.graphs:
            graph, logits = self._graph(mode)
            graph.replay()
            return logits
        return self._step(mode)
