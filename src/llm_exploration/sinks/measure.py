"""Attention sinks: which key tokens soak up attention, measured layer by layer.

Definitions, after Gu et al. (2024), "When Attention Sink Emerges in Language Models":

- ``A[l, h, q, k]`` is the attention weight query ``q`` gives key ``k`` in layer ``l``, head ``h``.
- A query *sees* a key when both are real tokens (not padding) and, in a causal model, ``k <= q``.
- ``alpha[l, h, k]`` is the mean of ``A[l, h, q, k]`` over the queries that see ``k``: the share of
  attention key ``k`` receives, on average, from the queries that could attend to it.
- Head ``(l, h)`` has a sink at ``k`` when ``alpha[l, h, k] > eps``; Gu et al. use ``eps = 0.3`` and
  report the percentage of (layer, head) pairs with a sink at the first token.
- The *class share* of a token class (first token, [CLS], [SEP], punctuation, other) is the
  attention mass a real query puts on the keys of that class, averaged over real queries.

Everything is reduced inside forward hooks on the attention modules, one layer at a time, so at
most one layer's ``[batch, heads, tokens, tokens]`` weights exist at once (``output_attentions``
keeps all layers). Padding queries and keys are excluded: a text gives the same numbers alone or
in a padded batch. The same hooks record each layer's hidden-state norm per token (massive
activations, Sun et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils.output_capturing import OutputRecorder

from llm_exploration.models import AttentionWeightsUnavailableError, require_eager

EPSILON = 0.3  # Gu et al.'s sink threshold
TOKEN_CLASSES: tuple[str, ...] = ("first token", "[CLS]", "[SEP]", "punctuation", "other")
FIRST, CLS, SEP, PUNCT, OTHER = range(len(TOKEN_CLASSES))


# --- finding the modules to hook ------------------------------------------------------------


def capture_modules(model: nn.Module, key: str) -> list[tuple[nn.Module, int]]:
    """The modules whose outputs transformers records as ``key`` ("attentions", "hidden_states").

    Read from the model's own ``_can_record_outputs`` declaration (what ``output_attentions`` and
    ``output_hidden_states`` hook), in forward order, each with the index of the tensor in its
    output tuple.
    """
    spec = None
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and key in (module._can_record_outputs or {}):
            spec, owner = module._can_record_outputs[key], module
            break
    if spec is None:
        raise ValueError(f"{type(model).__name__} declares no {key!r} outputs to record.")
    specs = spec if isinstance(spec, list) else [spec]
    found = []
    for s in specs:
        if not isinstance(s, OutputRecorder):
            s = OutputRecorder(target_class=s, index=0 if key == "hidden_states" else 1)
        for name, module in owner.named_modules():
            if not isinstance(module, s.target_class):
                continue
            if s.layer_name is not None and f".{s.layer_name.strip('.')}." not in f".{name}.":
                continue
            found.append((module, s.index))
    if not found:
        raise ValueError(f"No {key!r} modules found in {type(model).__name__}.")
    return found


def is_causal(model: nn.Module) -> bool:
    """Whether the model's self-attention is causal (decoder) or bidirectional (encoder)."""
    module, _ = capture_modules(model, "attentions")[0]
    return bool(getattr(module, "is_causal", getattr(model.config, "is_decoder", False)))


@contextmanager
def hooked(
    modules: Sequence[tuple[nn.Module, int]], fn: Callable[[int, Tensor], None]
) -> Iterator[None]:
    """Call ``fn(layer_index, output[index])`` after each module's forward, inside the block."""

    def make(i: int, index: int):
        def hook(module: nn.Module, args: tuple, output) -> None:
            fn(i, output[index] if isinstance(output, tuple) else output)

        return hook

    handles = [m.register_forward_hook(make(i, index)) for i, (m, index) in enumerate(modules)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


# --- tokens and their classes ---------------------------------------------------------------


def token_text(tokenizer: PreTrainedTokenizerBase, token_id: int) -> str:
    """A token as readers see it: decoded, with whitespace made visible."""
    text = tokenizer.decode([token_id])
    if not text.strip():  # whitespace only: show it
        return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"
    return text.replace("\n", "⏎").replace("\t", "⇥")


def token_classes(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> Tensor:
    """Class index (into :data:`TOKEN_CLASSES`) of each token, first match wins.

    Punctuation: tokens whose text has no letter or digit (includes newlines and symbols).
    """
    classes = []
    for pos, tid in enumerate(ids):
        text = tokenizer.decode([tid]).strip()
        if pos == 0:
            classes.append(FIRST)
        elif tid == tokenizer.cls_token_id:
            classes.append(CLS)
        elif tid == tokenizer.sep_token_id:
            classes.append(SEP)
        elif not any(c.isalnum() for c in text):
            classes.append(PUNCT)
        else:
            classes.append(OTHER)
    return torch.tensor(classes)


Text = str | tuple[str, str] | Sequence[int]


def is_pair(text: Text) -> bool:
    """Whether ``text`` is a sentence pair ``(A, B)`` of strings."""
    return isinstance(text, tuple) and len(text) == 2 and all(isinstance(x, str) for x in text)


def encode(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Text],
    max_length: int | None = None,
) -> list[list[int]]:
    """Token ids of each text: strings and ``(A, B)`` pairs get the tokenizer's special tokens
    (``[CLS] A [SEP] B [SEP]`` in BERT); id lists are kept."""
    out = []
    for t in texts:
        if isinstance(t, str):
            ids = tokenizer(t)["input_ids"]
        elif is_pair(t):
            ids = tokenizer(*t)["input_ids"]
        else:
            ids = list(t)
        if max_length is not None and len(ids) > max_length:
            raise ValueError(
                f"A text has {len(ids)} tokens, more than max_length={max_length}: shorten the "
                "text or raise max_length."
            )
        out.append(ids)
    return out


def pad(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-padded ``input_ids [B, T]`` and ``attention_mask [B, T]`` (1 for real tokens)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return input_ids, mask


def visibility(attention_mask: Tensor, causal: bool) -> Tensor:
    """``visible [B, Q, K]``: query q sees key k (both real tokens; ``k <= q`` if causal)."""
    real = attention_mask.bool()
    visible = real[:, :, None] & real[:, None, :]
    if causal:
        visible &= torch.ones_like(visible[0]).tril()[None]
    return visible


# --- the reduction ---------------------------------------------------------------------------


def reduce_attention(
    weights: Tensor, visible: Tensor, class_onehot: Tensor
) -> tuple[Tensor, Tensor]:
    """Reduce one layer's attention to per-key and per-class statistics.

    Args:
        weights: ``[B, H, Q, K]`` attention probabilities.
        visible: ``[B, Q, K]`` bool, from :func:`visibility`.
        class_onehot: ``[B, K, C]`` float, 1 where key k belongs to class c.

    Returns:
        ``alpha [B, H, K]``: mean weight key k receives from the queries that see it (NaN for
        keys no query sees, i.e. padding); ``share [B, H, C]``: attention mass a real query puts
        on each class, averaged over real queries.
    """
    w = weights.float() * visible[:, None]
    seen_by = visible.sum(1)  # [B, K]
    alpha = w.sum(2) / seen_by[:, None].clamp(min=1)
    alpha = alpha.masked_fill(seen_by[:, None] == 0, float("nan"))
    real_q = visible.any(-1).float()  # [B, Q]
    mass = w @ class_onehot[:, None]  # [B, H, Q, C]
    share = (mass * real_q[:, None, :, None]).sum(2) / real_q.sum(1).clamp(min=1)[:, None, None]
    return alpha, share


# --- the measurement ----------------------------------------------------------------------------


@dataclass
class SinkReport:
    """Sink statistics of one model over a set of texts (lists are per text, unpadded)."""

    name: str
    causal: bool
    tokens: list[list[str]]  # token texts
    classes: list[Tensor]  # [T] class index into TOKEN_CLASSES
    alpha: list[Tensor]  # [L, H, T]
    class_share: Tensor  # [N, L, H, C]
    hidden_norm: list[Tensor]  # [L, T]: L2 norm of each layer's output hidden state

    @property
    def n_layers(self) -> int:
        return self.class_share.shape[1]

    @property
    def n_heads(self) -> int:
        return self.class_share.shape[2]

    def alpha_at(self, position: int = 0) -> Tensor:
        """``[N, L, H]``: alpha of the key at ``position`` in every text."""
        return torch.stack([a[:, :, position] for a in self.alpha])

    def sink_rate(self, position: int = 0, eps: float = EPSILON) -> float:
        """Gu et al.'s Sink_k^eps: % of (layer, head) pairs with alpha_k > eps, mean over texts."""
        return 100 * (self.alpha_at(position) > eps).float().mean().item()

    def sink_rate_by_group(
        self, groups: Sequence[str], position: int = 0, eps: float = EPSILON
    ) -> pd.Series:
        """Sink rate (%) of the texts of each group (``groups[i]`` is text i's group, e.g. genre)."""
        rates = {}
        for g in dict.fromkeys(groups):
            rates[g] = self.select([i for i, x in enumerate(groups) if x == g]).sink_rate(
                position, eps
            )
        return pd.Series(rates, name=self.name)

    def sink_rate_by_head(self, position: int = 0, eps: float = EPSILON) -> Tensor:
        """``[L, H]``: fraction of texts in which head (l, h) has alpha_position > eps."""
        return (self.alpha_at(position) > eps).float().mean(0)

    def top_sink_positions(self) -> Tensor:
        """``[N, L]``: position of the key with the largest head-averaged alpha, per layer."""
        return torch.stack([a.mean(1).argmax(-1) for a in self.alpha])

    def max_alpha(self) -> Tensor:
        """``[N, L, H]``: the largest alpha of any key (how strong the head's top sink is)."""
        return torch.stack([a.nan_to_num(0).amax(-1) for a in self.alpha])

    def shares_by_layer(self) -> pd.DataFrame:
        """Mean class share per layer and class (heads and texts averaged), with spread over texts.

        Only classes present in the texts are listed; ``share`` is the mean over texts of the
        head-averaged share, ``sd`` its standard deviation over texts.
        """
        per_text = self.class_share.mean(2)  # [N, L, C]
        present = torch.zeros(len(TOKEN_CLASSES), dtype=torch.bool)
        for c in self.classes:
            present[c.unique()] = True
        rows = []
        for layer in range(self.n_layers):
            for c in present.nonzero().flatten().tolist():
                v = per_text[:, layer, c]
                rows.append(
                    {
                        "layer": layer,
                        "class": TOKEN_CLASSES[c],
                        "share": v.mean().item(),
                        "sd": v.std().item() if len(v) > 1 else 0.0,
                    }
                )
        return pd.DataFrame(rows)

    def alpha_seen(self, min_queries: int = 1) -> list[Tensor]:
        """:attr:`alpha` with NaN for keys that fewer than ``min_queries`` queries see.

        In a causal model key ``k`` of a ``T``-token text is seen by ``T - k`` queries: the last
        key's alpha is the last query's weight on itself alone, not an average, and it is large
        in heads that attend to the current token. ``min_queries`` leaves such keys out.
        """
        out = []
        for a in self.alpha:
            length = a.shape[-1]
            seen = length - torch.arange(length) if self.causal else torch.full((length,), length)
            out.append(a.masked_fill(seen < min_queries, float("nan")))
        return out

    def top_tokens(
        self,
        by: str = "string",
        n: int = 10,
        min_count: int = 1,
        skip_first: bool = False,
        min_queries: int = 1,
    ) -> pd.DataFrame:
        """The keys with the largest alpha (mean over layers and heads), grouped by token text
        (``by="string"``) or by position (``by="position"``), among groups seen at least
        ``min_count`` times; ``skip_first`` leaves out position 0 (to find secondary sinks) and
        ``min_queries`` the keys that fewer queries see (see :meth:`alpha_seen`)."""
        if by not in ("string", "position"):
            raise ValueError(f"by must be 'string' or 'position', got {by!r}.")
        rows = []
        for toks, a in zip(self.tokens, self.alpha_seen(min_queries)):
            per_key = a.mean((0, 1))
            rows += [
                {"string": t, "position": p, "alpha": v.item()}
                for p, (t, v) in enumerate(zip(toks, per_key))
                if (p > 0 or not skip_first) and not v.isnan()
            ]
        grouped = pd.DataFrame(rows).groupby(by)["alpha"].agg(mean_alpha="mean", count="size")
        return (
            grouped[grouped["count"] >= min_count]
            .sort_values("mean_alpha", ascending=False)
            .head(n)
            .reset_index()
        )

    def uniform_shares(self) -> Tensor:
        """``[N, C]``: each class's share if every query spread its attention evenly over the keys
        it sees (the no-sink baseline)."""
        out = []
        for c in self.classes:
            onehot = torch.nn.functional.one_hot(c, len(TOKEN_CLASSES)).float()  # [T, C]
            visible = visibility(torch.ones(1, len(c)), self.causal)[0].float()  # [Q, K]
            out.append((visible / visible.sum(-1, keepdim=True) @ onehot).mean(0))
        return torch.stack(out)

    def select(self, indices: Sequence[int]) -> SinkReport:
        """The report restricted to the texts at ``indices``."""
        pick = list(indices)
        return SinkReport(
            name=self.name,
            causal=self.causal,
            tokens=[self.tokens[i] for i in pick],
            classes=[self.classes[i] for i in pick],
            alpha=[self.alpha[i] for i in pick],
            class_share=self.class_share[pick],
            hidden_norm=[self.hidden_norm[i] for i in pick],
        )

    def norm_ratio(self) -> Tensor:
        """``[N, L]``: first token's hidden-state norm divided by the median norm of the others."""
        return torch.stack([h[:, 0] / h[:, 1:].median(-1).values for h in self.hidden_norm])


@torch.no_grad()
def measure_batch(
    model: PreTrainedModel,
    input_ids: Tensor,
    attention_mask: Tensor,
    class_onehot: Tensor,
    causal: bool,
    token_type_ids: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One padded batch through ``model.base_model``, each layer reduced in its forward hook.

    Args: ``input_ids [B, T]``, ``attention_mask [B, T]``, ``class_onehot [B, T, C]``, and for
    sentence pairs ``token_type_ids [B, T]`` (0 for segment A, 1 for segment B).
    Returns: ``alpha [B, L, H, T]``, ``share [B, L, H, C]`` (see :func:`reduce_attention`) and
    ``norm [B, L, T]``, the L2 norm of each layer's output hidden state.
    """
    device = model.device
    visible = visibility(attention_mask, causal).to(device)
    class_onehot = class_onehot.to(device)
    attn_modules = capture_modules(model, "attentions")
    layer_modules = capture_modules(model, "hidden_states")
    alphas: list[Tensor | None] = [None] * len(attn_modules)
    shares: list[Tensor | None] = [None] * len(attn_modules)
    norms: list[Tensor | None] = [None] * len(layer_modules)

    def on_attention(i: int, weights: Tensor | None) -> None:
        if weights is None:
            raise AttentionWeightsUnavailableError(
                f"Layer {i} returned no attention weights: load the model with attn_implementation='eager'."
            )
        alphas[i], shares[i] = (t.cpu() for t in reduce_attention(weights, visible, class_onehot))

    def on_layer(i: int, hidden: Tensor) -> None:
        norms[i] = hidden.float().norm(dim=-1).cpu()

    kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids.to(device)}
    with hooked(attn_modules, on_attention), hooked(layer_modules, on_layer):
        model.base_model(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), **kwargs
        )
    return torch.stack(alphas, 1), torch.stack(shares, 1), torch.stack(norms, 1)


@torch.no_grad()
def measure_sinks(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Text],
    *,
    name: str | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
) -> SinkReport:
    """Run ``texts`` through ``model`` (eager attention) and reduce every layer in hooks.

    ``texts`` are strings or ``(A, B)`` sentence pairs (tokenized with the tokenizer's special
    tokens and, for pairs, segment ids) or lists of token ids (used as given, e.g. to control
    what stands first).
    """
    require_eager(model)
    ids = encode(tokenizer, texts, max_length)
    causal = is_causal(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    classes = [token_classes(tokenizer, x) for x in ids]
    alphas: list[Tensor] = []
    shares: list[Tensor] = []
    norms: list[Tensor] = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        input_ids, mask = pad(chunk, pad_id)
        onehot = torch.zeros(len(chunk), input_ids.shape[1], len(TOKEN_CLASSES))
        for i, c in enumerate(classes[start : start + batch_size]):
            onehot[i, torch.arange(len(c)), c] = 1.0
        pairs = [t for t in texts[start : start + batch_size] if is_pair(t)]
        types = pad([tokenizer(*t)["token_type_ids"] for t in pairs], 0)[0] if pairs else None
        if types is not None and len(pairs) != len(chunk):
            raise ValueError("Mix sentence pairs and single texts in separate calls.")
        alpha, share, norm = measure_batch(model, input_ids, mask, onehot, causal, types)
        for i, x in enumerate(chunk):
            alphas.append(alpha[i, :, :, : len(x)])
            norms.append(norm[i, :, : len(x)])
        shares.append(share)
    return SinkReport(
        name=name or getattr(model.config, "name_or_path", type(model).__name__),
        causal=causal,
        tokens=[[token_text(tokenizer, t) for t in x] for x in ids],
        classes=classes,
        alpha=alphas,
        class_share=torch.cat(shares),
        hidden_norm=norms,
    )


@torch.no_grad()
def attention_maps(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    text: str | Sequence[int],
    layers: Sequence[int],
) -> tuple[Tensor, list[str]]:
    """Head-averaged attention ``[len(layers), T, T]`` of one text at the chosen layers, and its tokens."""
    require_eager(model)
    (ids,) = encode(tokenizer, [text])
    modules = capture_modules(model, "attentions")
    if not all(-len(modules) <= layer < len(modules) for layer in layers):
        raise ValueError(f"layers must be in [0, {len(modules)}), got {list(layers)}.")
    wanted = {layer % len(modules): j for j, layer in enumerate(layers)}
    maps: list[Tensor] = [None] * len(layers)  # type: ignore[list-item]

    def keep(i: int, weights: Tensor | None) -> None:
        if weights is None:
            raise AttentionWeightsUnavailableError(
                "No attention weights: use attn_implementation='eager'."
            )
        if i in wanted:
            maps[wanted[i]] = weights[0].float().mean(0).cpu()

    with hooked(modules, keep):
        model.base_model(input_ids=torch.tensor([ids], device=model.device))
    return torch.stack(maps), [token_text(tokenizer, t) for t in ids]
