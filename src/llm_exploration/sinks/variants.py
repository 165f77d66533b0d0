"""Is the sink a position or a token? Change what stands first and see where the attention goes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llm_exploration.sinks.measure import measure_sinks


@dataclass
class Variant:
    """One way of laying out the same texts, and where the token we follow now stands."""

    name: str
    ids: list[list[int]]
    followed: list[int | None]  # position of the followed token in each text (None: absent)


def decoder_variants(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[Variant]:
    """Variants for a decoder; the followed token is each text's original first token."""
    base = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    vocab = tokenizer.get_vocab()
    special = vocab.get("<|endoftext|>", tokenizer.eos_token_id)
    space = tokenizer(" ", add_special_tokens=False)["input_ids"]
    well = tokenizer("Well,", add_special_tokens=False)["input_ids"]
    return [
        Variant("as written", base, [0] * len(base)),
        Variant(
            f"{tokenizer.convert_ids_to_tokens(special)} first",
            [[special] + b for b in base],
            [1] * len(base),
        ),
        Variant("a space first", [space + b for b in base], [len(space)] * len(base)),
        Variant("'Well,' first", [well + b for b in base], [len(well)] * len(base)),
        Variant("first token dropped", [b[1:] for b in base], [None] * len(base)),
        Variant("text twice", [b + b for b in base], [len(b) for b in base]),
    ]


def encoder_variants(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[Variant]:
    """Variants for a BERT-style encoder; the followed token is [CLS]."""
    base = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    n = len(base)
    return [
        Variant("[CLS] text [SEP]", [[cls] + b + [sep] for b in base], [0] * n),
        Variant("text [SEP]", [b + [sep] for b in base], [None] * n),
        Variant("[SEP] text [SEP]", [[sep] + b + [sep] for b in base], [None] * n),
        Variant("text only", base, [None] * n),
        Variant("[CLS] [CLS] text [SEP]", [[cls, cls] + b + [sep] for b in base], [1] * n),
        Variant("text [CLS] [SEP]", [b + [cls, sep] for b in base], [len(b) for b in base]),
    ]


def where_sink_goes(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, variants: Sequence[Variant]
) -> pd.DataFrame:
    """Mean alpha (over layers, heads and texts) at position 0, at the followed token, and of a
    typical other token (the median key), for each variant."""
    rows = []
    for v in variants:
        report = measure_sinks(model, tokenizer, v.ids)
        per_key = [a.mean((0, 1)) for a in report.alpha]  # [T] per text
        followed = [k[p].item() for k, p in zip(per_key, v.followed) if p is not None and p != 0]
        others = [k[1:].median().item() for k in per_key]
        rows.append(
            {
                "variant": v.name,
                "position 0": torch.tensor([k[0].item() for k in per_key]).mean().item(),
                "followed token, moved": torch.tensor(followed).mean().item()
                if followed
                else float("nan"),
                "typical token": torch.tensor(others).mean().item(),
                "sink rate at position 0 (%)": report.sink_rate(0),
            }
        )
    return pd.DataFrame(rows)
