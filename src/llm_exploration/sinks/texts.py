"""Texts for the sink measurements: passages written for the post, tweets and GSM8K questions."""

from __future__ import annotations

import random

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from llm_exploration.data import load_dataset

# Written for the post: different genres, lengths and punctuation habits.
PASSAGES: tuple[str, ...] = (
    (
        "The ferry left the harbour at dawn. Gulls followed it for a while, then gave up and turned "
        "back toward the fish market, where the morning's catch was already being sorted."
    ),
    (
        "To make the dough, mix 500 g of flour with 10 g of salt, add 350 ml of warm water and a "
        "spoon of yeast; knead for ten minutes, cover, and let it rise for two hours."
    ),
    (
        "Q: Why did the build fail? A: The test runner could not find the config file, because the "
        "path was relative to the wrong folder. Fixing the path made every test pass."
    ),
    (
        "She said she would call back after lunch. She did not. By four o'clock the office was quiet, "
        "and the phone on the desk had not rung once."
    ),
    (
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. It happens in "
        "chloroplasts, mostly in the leaves, and it feeds almost every food chain on Earth."
    ),
    "def mean(xs):\n    # Return the average of a non-empty list.\n    return sum(xs) / len(xs)",
    (
        "Dear neighbours, the street party is moved to Sunday (rain is forecast for Saturday). "
        "Bring a chair, a dish to share, and your best stories!"
    ),
    "Rivers carve valleys slowly: a few millimetres a year, for millions of years.",
)


def sink_texts(n_tweets: int, n_questions: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(genre, text)`` pairs: every passage, ``n_tweets`` tweets (tweet_eval emotion, test) and
    ``n_questions`` GSM8K test questions, sampled with ``seed``."""
    rng = random.Random(seed)
    tweets = load_dataset("cardiffnlp/tweet_eval", "emotion", split="test")["text"]
    questions = load_dataset("openai/gsm8k", "main", split="test")["question"]
    return (
        [("passages", p) for p in PASSAGES]
        + [("tweets", t) for t in rng.sample(tweets, n_tweets)]
        + [("GSM8K questions", q) for q in rng.sample(questions, n_questions)]
    )


def long_streams(
    tokenizer: PreTrainedTokenizerBase, n_streams: int, length: int, seed: int = 0
) -> list[Tensor]:
    """``n_streams`` token streams ``[1, length]``: GSM8K train problems with their worked
    solutions, concatenated in a random order (a long text made of many short documents)."""
    rng = random.Random(seed)
    rows = load_dataset("openai/gsm8k", "main", split="train")
    order = rng.sample(range(len(rows)), len(rows))
    streams, ids = [], []
    for i in order:
        row = rows[i]
        ids += tokenizer(f"Question: {row['question']}\nAnswer: {row['answer']}\n\n")["input_ids"]
        if len(ids) >= length:
            streams.append(torch.tensor([ids[:length]]))
            ids = []
            if len(streams) == n_streams:
                return streams
    raise ValueError(f"GSM8K train is too short for {n_streams} streams of {length} tokens.")
