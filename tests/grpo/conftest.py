"""Shared fixtures: SmolLM2's tokenizer (pad == EOS) and tiny randomly-initialised Llamas."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tokenizer():
    from llm_exploration.models import load_causal_lm

    _, tok = load_causal_lm()
    assert tok.pad_token_id == tok.eos_token_id  # the case the masking must handle
    return tok


def tiny_llama(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer, 32-wide Llama with SmolLM2's vocabulary and special tokens."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                      bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg)


@pytest.fixture
def tiny(tokenizer):
    return tiny_llama(tokenizer)


@pytest.fixture
def make_tiny(tokenizer):
    """``make_tiny(seed)`` builds a fresh tiny Llama."""
    return lambda seed=0: tiny_llama(tokenizer, seed)
