import pytest

from llm_exploration.models import load_encoder


@pytest.fixture(scope="module")
def encoder():
    """all-MiniLM-L6-v2 in eval mode, one copy per test module: use_sparse_attention changes it in place."""
    model, tok = load_encoder("all-minilm-l6-v2", attn_implementation="sdpa")
    return model.eval(), tok
