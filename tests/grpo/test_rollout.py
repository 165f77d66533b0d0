"""Generation, completion masks (pad == EOS), left padding and completion log-probs."""

from __future__ import annotations

import torch

from llm_exploration.grpo.data import apply_template, build_messages
from llm_exploration.grpo.rollout import (
    completion_mask,
    generate,
    left_pad,
    per_token_logps,
    position_ids_from_mask,
    tokenize_prompts,
)

EOS = 2


def test_completion_mask_keeps_first_eos_when_pad_is_eos():
    ids = torch.tensor([[5, 6, EOS, EOS, EOS],  # ended, then padded with EOS
                        [5, EOS, 7, 8, EOS],  # tokens after the first EOS are not the completion
                        [5, 6, 7, 8, 9],  # truncated
                        [EOS, EOS, EOS, EOS, EOS]])  # empty answer: the EOS itself is kept
    mask, truncated = completion_mask(ids, [EOS])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert truncated.tolist() == [False, False, True, False]
    mask2, _ = completion_mask(ids, [EOS, 9])  # several EOS ids
    assert mask2[2].tolist() == [1, 1, 1, 1, 1]


def test_left_pad_and_positions():
    ids, mask = left_pad([[1, 2, 3], [4]], pad_token_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert position_ids_from_mask(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


def _prompts(tokenizer):
    questions = ["Calculate 2 + 3.", "A farmer has 17 sheep and buys 5 more; then 3 run away. How many are left?"]
    return tokenize_prompts(tokenizer, [apply_template(tokenizer, build_messages(q, few_shot=1)) for q in questions])


def test_logps_equal_direct_unpadded_computation(tokenizer, tiny):
    """Log-probs at completion positions of a left-padded batch equal those of each sequence
    run alone without padding (so padding, masks and position ids are right)."""
    ids, mask = _prompts(tokenizer)
    assert (mask == 0).any()  # the batch really is left-padded
    torch.manual_seed(0)
    r = generate(tiny, tokenizer, ids, mask, 3, max_completion_length=6)
    # force one completion to end early so its mask and padding are exercised
    r.completion_ids[1, 2:] = EOS
    r.completion_mask[1] = torch.tensor([1, 1, 1, 0, 0, 0])
    lp, ent = per_token_logps(tiny, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask,
                              temperature=0.7, compute_entropy=True)
    for i in range(r.prompt_ids.size(0)):
        p = r.prompt_ids[i][r.prompt_mask[i].bool()]
        c = r.completion_ids[i][r.completion_mask[i].bool()]
        logits = tiny(torch.cat([p, c]).unsqueeze(0)).logits[0, len(p) - 1:-1] / 0.7
        direct = logits.log_softmax(-1).gather(-1, c.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(lp[i, :len(c)], direct, atol=1e-5, rtol=1e-5)
        probs = logits.softmax(-1)
        torch.testing.assert_close(ent[i, :len(c)], -(probs * probs.log()).sum(-1), atol=1e-4, rtol=1e-4)


def test_shared_prompt_cache_gives_same_logps_and_gradients(tokenizer, tiny):
    ids, mask = _prompts(tokenizer)
    torch.manual_seed(1)
    r = generate(tiny, tokenizer, ids, mask, 2, max_completion_length=5)
    results = []
    for group_size in (1, 2):
        tiny.zero_grad()
        lp, _ = per_token_logps(tiny, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask,
                                group_size=group_size)
        (lp * r.completion_mask).sum().backward()
        results.append((lp.detach(), [p.grad.clone() for p in tiny.parameters()]))
    m = r.completion_mask.bool()
    torch.testing.assert_close(results[0][0][m], results[1][0][m], atol=1e-5, rtol=1e-5)
    for g1, g2 in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(g1, g2, atol=1e-4, rtol=1e-3)


def test_prompt_cache_reuse_does_not_change_generation(tokenizer, tiny):
    ids, mask = _prompts(tokenizer)
    outs = []
    for reuse in (False, True):
        r = generate(tiny, tokenizer, ids, mask, 2, max_completion_length=6, reuse_prompt_cache=reuse,
                     do_sample=False)
        outs.append(r.completion_ids)
    assert torch.equal(outs[0], outs[1])
    for reuse in (False, True):  # sampled: same draws from the same seed
        torch.manual_seed(3)
        outs.append(generate(tiny, tokenizer, ids, mask, 2, max_completion_length=6,
                             reuse_prompt_cache=reuse).completion_ids)
    assert torch.equal(outs[2], outs[3])
    assert outs[2].shape[0] == 4


def test_generation_restores_training_mode(tokenizer, tiny):
    ids, mask = _prompts(tokenizer)
    tiny.train()
    generate(tiny, tokenizer, ids, mask, 2, max_completion_length=2)
    assert tiny.training


def test_generation_equals_transformers_generate_when_rows_end_at_different_steps(tokenizer, tiny):
    """Greedy: the engine's loop (shared prompt cache, finished rows dropped from the batch)
    writes exactly what ``model.generate`` writes, for rows that end at different steps."""
    with torch.no_grad():  # larger weights than the init, so that greedy text depends on the prompt
        for param in tiny.parameters():
            if param.dim() == 2:
                param.normal_(0, 0.5)
    ids, mask = _prompts(tokenizer)
    plain = tiny.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False,
                          pad_token_id=tokenizer.pad_token_id)[:, ids.size(1):]
    # make the tokens written at steps 1 and 4 of the two rows "end of sequence" for both decoders
    stop = [int(plain[0, 1]), int(plain[1, 4])]
    tiny.generation_config.eos_token_id = [EOS, *stop]
    expected = tiny.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)[:, ids.size(1):]
    r = generate(tiny, tokenizer, ids, mask, 1, max_completion_length=8, do_sample=False)
    lengths = r.completion_mask.sum(1).tolist()
    assert lengths[0] <= 2 and lengths[1] <= 5 and lengths[0] != lengths[1]
    for i, n in enumerate(lengths):
        assert r.completion_ids[i, :n].tolist() == expected[i, :n].tolist()


def test_sampling_follows_the_warped_distribution(tokenizer, tiny):
    """Sampled first tokens follow softmax(top-k(logits / T)): frequencies within 3 s.e."""
    ids, mask = _prompts(tokenizer)
    ids, mask = ids[:1], mask[:1]
    logits = tiny(input_ids=ids, attention_mask=mask).logits[0, -1] / 0.5
    top = logits.topk(3)
    probs = top.values.softmax(-1)
    torch.manual_seed(0)
    n = 3000
    r = generate(tiny, tokenizer, ids, mask, n, max_completion_length=1, temperature=0.5, top_k=3)
    first = r.completion_ids[:, 0]
    for token, p in zip(top.indices.tolist(), probs.tolist()):
        freq = (first == token).float().mean().item()
        assert abs(freq - p) < 3 * (p * (1 - p) / n) ** 0.5 + 1e-3, (token, freq, p)
    assert torch.isin(first, top.indices).all()
