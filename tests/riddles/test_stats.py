import math

import numpy as np
import pytest
import torch

from llm_exploration.intervals import pass_at_k
from llm_exploration.riddles.sampling import sample_replies
from llm_exploration.riddles.stats import (
    paired_bootstrap,
    t_interval,
    trailing_mean,
    two_level_bootstrap,
    wilson,
)


def test_pass_at_k():
    assert pass_at_k(16, 0, 16) == 0.0 and pass_at_k(16, 1, 16) == 1.0
    assert pass_at_k(16, 4, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_wilson_is_not_zero_width_at_zero():
    lo, hi = wilson(0, 90)
    assert lo == 0.0 and 0.03 < hi < 0.05
    lo, hi = wilson(45, 90)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 90), rel=0.05)


def test_t_interval_uses_n_minus_one_degrees_of_freedom():
    mean, lo, hi = t_interval([0.1, 0.2, 0.3])
    assert mean == pytest.approx(0.2) and hi - mean == pytest.approx(4.303 * 0.1 / math.sqrt(3), rel=1e-3)
    with pytest.raises(ValueError):
        t_interval([0.1])


def test_paired_bootstrap_and_trailing_mean():
    mean, lo, hi = paired_bootstrap(np.r_[np.ones(30), np.zeros(70)])
    assert mean == pytest.approx(0.3) and lo < 0.3 < hi
    assert list(trailing_mean([0, 2, 4, 6], 2)) == [0, 1, 3, 5]  # never looks ahead


def test_cached_prompt_sampling_matches_plain_generate(tiny, tokenizer):
    prompts = ["Hello there, riddle me", "Hi"]
    out = sample_replies(tiny, tokenizer, prompts, n=1, max_new_tokens=5, temperature=0, batch_size=2)
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        ids = tiny.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                            eos_token_id=[tokenizer.eos_token_id])
    plain = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert [texts[0] for texts, _ in out] == plain
    with pytest.raises(ValueError, match="greedy"):
        sample_replies(tiny, tokenizer, prompts, n=2, max_new_tokens=2, temperature=0)


def test_two_level_bootstrap_widens_with_seed_spread():
    rng = np.random.default_rng(0)
    riddles = rng.normal(0.1, 0.3, size=60)
    same = np.vstack([riddles] * 3)
    spread = same + np.array([[-0.1], [0.0], [0.1]])
    m1, lo1, hi1 = two_level_bootstrap(same, n_boot=2000)
    m2, lo2, hi2 = two_level_bootstrap(spread, n_boot=2000)
    assert m1 == pytest.approx(m2) and lo1 < m1 < hi1 and hi2 - lo2 > hi1 - lo1
    with pytest.raises(ValueError, match="seeds x riddles"):
        two_level_bootstrap(riddles)
