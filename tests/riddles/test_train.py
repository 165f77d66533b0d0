import importlib.util

import pytest
import torch

from llm_exploration.riddles import load_riddles
from llm_exploration.riddles.evaluate import sample_riddles, summarise
from llm_exploration.riddles.train import (
    RiddleGRPOSettings,
    UnslothUnavailableError,
    resolve_unsloth,
    train_riddles,
)

NO_UNSLOTH = importlib.util.find_spec("unsloth") is None


@pytest.mark.skipif(not NO_UNSLOTH, reason="unsloth is installed here")
def test_asking_for_unsloth_without_it_is_a_clear_error():
    with pytest.raises(UnslothUnavailableError, match=r"pip install -e '\.\[gpu\]'"):
        resolve_unsloth(True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_auto_picks_trl_peft_on_cpu_and_never_imports_unsloth():
    assert resolve_unsloth(None) is False
    assert resolve_unsloth(False) is False


def test_two_grpo_steps_on_a_tiny_model_record_every_completion(tiny, tokenizer, tmp_path):
    from peft import LoraConfig

    settings = RiddleGRPOSettings(max_steps=2, num_generations=2, max_completion_length=6,
                                  learning_rate=1e-3, lora_r=2, lora_alpha=4)
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    before = {n: p.detach().clone() for n, p in tiny.named_parameters()}
    result = train_riddles(load_riddles("train")[:4], settings, model=tiny, tokenizer=tokenizer,
                           peft_config=lora, output_dir=tmp_path)
    assert list(result.history["step"]) == [1, 2]
    for column in ["rewards/format_soft_reward/mean", "rewards/riddle_correctness_reward/mean",
                   "completions/mean_length"]:
        assert column in result.history
    assert len(result.samples) == 2 * 2  # steps x generations
    assert set(result.samples["step"]) == {1, 2}
    assert {"completion", "reward", "answer", "answer_words", "formatted"} <= set(result.samples)
    lora_params = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert lora_params and all("lora_" in n for n in lora_params)
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
            for n, p in result.model.named_parameters() if "lora_" not in n}
    assert all(torch.equal(base[n], p) for n, p in before.items())  # only the adapter trains


def test_sampling_evaluation_shape(tiny, tokenizer):
    riddles = load_riddles("test")[:3]
    df = sample_riddles(tiny, tokenizer, riddles, n_samples=2, max_new_tokens=4, batch_size=2)
    assert len(df) == 6
    assert list(df["id"]) == [r.id for r in riddles for _ in range(2)]
    assert list(df["sample"]) == [0, 1] * 3
    s = summarise(df)
    assert s["riddles"] == 3 and s["samples_per_riddle"] == 2
    assert s["accuracy"] == 0.0  # a random 2-layer model does not answer riddles
    assert (df["completion_tokens"] <= 4).all()
