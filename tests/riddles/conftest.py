"""Fixtures: SmolLM2's tokenizer (pad == EOS) and a tiny random Llama with its vocabulary."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tokenizer():
    from llm_exploration.models import embedded_model_path

    tok = AutoTokenizer.from_pretrained(embedded_model_path("smollm2-135m-instruct"))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@pytest.fixture
def tiny(tokenizer) -> LlamaForCausalLM:
    """A 2-layer, 32-wide Llama with SmolLM2's vocabulary and special tokens."""
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg)
