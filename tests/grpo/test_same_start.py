"""Both trainers' own rollout code on the same prompts from the same weights."""

from __future__ import annotations

from llm_exploration.grpo import same_start
from llm_exploration.grpo.compare import training_rows
from llm_exploration.grpo.config import GRPOConfig

EASY = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+", "-"],
        "allow_parentheses": False, "allow_negation": False}


def test_both_trainers_sample_the_same_prompts_with_the_same_settings(tokenizer, tiny, tmp_path):
    cfg = GRPOConfig(dataset="basic_arithmetic", dataset_kwargs=EASY, train_size=8, eval_size=0, few_shot=0,
                     num_generations=2, per_device_train_batch_size=4, max_completion_length=5, temperature=0.7,
                     reward_funcs=["lenient_correctness"], output_dir=str(tmp_path / "o"), logger="none")
    tiny.save_pretrained(tmp_path / "start")
    tokenizer.save_pretrained(tmp_path / "start")
    rows = [{"question": r["question"], "answer": r["answer"]} for r in training_rows(cfg)[:4]]
    ours = same_start.sample_ours(tiny, tokenizer, cfg, rows)
    trainer = same_start.trl_trainer(cfg, tmp_path / "start")
    settings = same_start.trl_sampling_settings(trainer)
    assert settings["temperature"] == 0.7 and settings["top_k"] == 0 and settings["top_p"] == 1.0
    assert settings["do_sample"] and settings["max_new_tokens"] == 5 and settings["repetition_penalty"] == 1.0
    trl = same_start.sample_trl(trainer, cfg, rows)
    for df in (ours, trl):
        assert len(df) == len(rows) * cfg.num_generations
        assert df["tokens"].between(1, cfg.max_completion_length).all()
        assert set(df["lenient_correctness"].unique()) <= {0.0, 1.0}
    table = same_start.compare_samples(ours, trl, n_boot=50)
    assert list(table.index) == ["tokens", "finished", "lenient_correctness"]
    assert (table["low"] <= table["ours - TRL"]).all() and (table["ours - TRL"] <= table["high"]).all()
