import importlib.util

import pytest
import torch

from llm_exploration.riddles import load_riddles
from llm_exploration.riddles.choices import make_choices
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
    autocast = []  # per forward call: is bf16 autocast on? (TRL's generation calls forward too)
    hook = tiny.register_forward_pre_hook(lambda m, a: autocast.append(torch.is_autocast_enabled("cpu")))
    result = train_riddles(make_choices(load_riddles("train"))[:4], settings, model=tiny, tokenizer=tokenizer,
                           peft_config=lora, output_dir=tmp_path)
    hook.remove()
    if not torch.cuda.is_available():
        assert len(autocast) > 2 * 6 and all(autocast)  # generation as well as the training forward
    assert list(result.history["step"]) == [1, 2]
    for column in ["rewards/riddle_format_reward/mean", "rewards/riddle_correctness_reward/mean",
                   "completions/mean_length"]:
        assert column in result.history
    assert len(result.samples) == 2 * 2 * 2  # steps x riddles per step x generations
    assert set(result.samples["step"]) == {1, 2}
    assert {"reply", "reward", "answer", "chosen", "committed", "correct", "answer_words",
            "completion_tokens"} <= set(result.samples)
    assert (result.samples["completion_tokens"] <= 6).all()
    lora_params = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert lora_params and all("lora_" in n for n in lora_params)
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
            for n, p in result.model.named_parameters() if "lora_" not in n}
    assert all(torch.equal(base[n], p) for n, p in before.items())  # only the adapter trains


def test_settings_are_checked():
    with pytest.raises(ValueError, match="rewards"):
        RiddleGRPOSettings(rewards="accuracy")
    with pytest.raises(ValueError, match="num_generations"):
        RiddleGRPOSettings(num_generations=1)
    with pytest.raises(ValueError, match="think"):
        RiddleGRPOSettings(n_shots=2)



@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path's autocast")
def test_no_autocast_is_held_open_across_optimizer_steps(tiny, tokenizer, tmp_path):
    """bf16 autocast caches its bf16 copy of each weight until the outermost context exits: a
    context held around all of training would sample and train every step with the first step's
    weights (seen here: a huge and a negligible learning rate gave the same replies). So when the
    optimizer steps, no autocast may be open; generation gets its own per call."""
    from peft import LoraConfig
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    at_step = []
    handle = register_optimizer_step_pre_hook(lambda opt, a, k: at_step.append(torch.is_autocast_enabled("cpu")))
    try:
        settings = RiddleGRPOSettings(max_steps=2, num_generations=2, max_completion_length=4,
                                      learning_rate=1e-3, lora_r=2, lora_alpha=4)
        lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        train_riddles(make_choices(load_riddles("train"))[:2], settings, model=tiny, tokenizer=tokenizer,
                      peft_config=lora, output_dir=tmp_path)
    finally:
        handle.remove()
    assert at_step == [False, False]
