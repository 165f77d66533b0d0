"""Texts for the sink measurements: passages written for the post, tweets, GSM8K questions, and
Shakespeare (tiny_shakespeare) for long streams, perplexity and encoder sentence pairs."""

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


SHAKESPEARE = "karpathy/tiny_shakespeare"


def shakespeare(split: str = "train") -> str:
    """One split of tiny_shakespeare as a single string (speeches separated by blank lines)."""
    return load_dataset(SHAKESPEARE, None, split=split)["text"][0]


def shakespeare_streams(
    tokenizer: PreTrainedTokenizerBase,
    n_streams: int,
    length: int,
    split: str = "train",
    seed: int = 0,
) -> Tensor:
    """``[n_streams, length]`` token streams from disjoint stretches of the split, each starting
    at the beginning of a speech chosen at random (``seed``) in the first fifth of its stretch."""
    text = shakespeare(split)
    stretch = len(text) // n_streams
    rng = random.Random(seed)
    streams = []
    for i in range(n_streams):
        lo = i * stretch
        starts = [lo] + [j + 2 for j in _find_all(text, "\n\n", lo, lo + stretch // 5)]
        start = rng.choice(starts)
        ids = tokenizer(text[start : lo + stretch], add_special_tokens=False)["input_ids"]
        if len(ids) < length:
            raise ValueError(
                f"tiny_shakespeare {split!r} is too short for {n_streams} streams of {length} "
                f"tokens (a stretch gave {len(ids)}): ask for fewer or shorter streams."
            )
        streams.append(ids[:length])
    return torch.tensor(streams)


def _find_all(text: str, sub: str, lo: int, hi: int) -> list[int]:
    out, i = [], text.find(sub, lo, hi)
    while i != -1:
        out.append(i)
        i = text.find(sub, i + 1, hi)
    return out


def shakespeare_pairs(n_pairs: int, max_words: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """``n_pairs`` pairs of consecutive speeches (A, B) from the validation split, each cut to
    ``max_words`` words: the two-segment inputs ``[CLS] A [SEP] B [SEP]`` of Clark et al."""
    speeches = [s.strip() for s in shakespeare("validation").split("\n\n") if s.strip()]
    rng = random.Random(seed)
    picks = rng.sample(range(len(speeches) - 1), n_pairs)

    def cut(s: str) -> str:
        return " ".join(s.split()[:max_words])

    return [(cut(speeches[i]), cut(speeches[i + 1])) for i in picks]
