"""Riddles: our own riddle set, answer matching that cannot be gamed, GRPO training with TRL.

Read in order: ``data`` (the riddles), ``answers`` (normalisation and equality), ``prompts``
(chat prompts with worked examples), ``rewards`` (TRL-signature rewards), ``evaluate``
(sampling on held-out riddles), ``train`` (TRL's GRPOTrainer with a LoRA adapter; Unsloth on a
CUDA GPU) and ``plots``.
"""

from llm_exploration.riddles.answers import is_correct, normalise_answer
from llm_exploration.riddles.data import Riddle, load_hub_riddles, load_riddles
from llm_exploration.riddles.prompts import riddle_dataset_rows, riddle_messages
from llm_exploration.riddles.rewards import riddle_correctness_reward, substring_reward

__all__ = [
    "Riddle",
    "is_correct",
    "load_hub_riddles",
    "load_riddles",
    "normalise_answer",
    "riddle_correctness_reward",
    "riddle_dataset_rows",
    "riddle_messages",
    "substring_reward",
]
