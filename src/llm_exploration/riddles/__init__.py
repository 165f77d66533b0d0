"""Riddles: our own riddle set, answer matching that cannot be gamed, GRPO training with TRL.

Read in order: ``data`` (the riddles and their rewordings), ``answers`` (normalisation and
equality), ``choices`` (the multiple-choice form and what a reply commits to), ``prompts``
(chat prompts, direct or think form), ``rewards`` (TRL-signature rewards), ``sampling`` (many
short replies per prompt, the prompt encoded once), ``stats`` (pass@k, Wilson and t-intervals),
``evaluate`` (scoring samples, failure categories), ``train`` (TRL's GRPOTrainer with a LoRA
adapter; Unsloth on a CUDA GPU), ``experiment`` (the post's sweep) and ``plots``.
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
