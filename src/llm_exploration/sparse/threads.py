"""A document-level task long enough for sparse attention to matter: threads of tweets.

A *thread* is a run of tweets from one split of tweet_eval emotion, cut to ``length`` tokens
([CLS] and [SEP] included). Its label is the thread's emotion: each tweet is drawn from that
emotion with probability ``major_share`` and from one of the other emotions otherwise, so the
label is spread over the whole document and no single tweet decides it. A readout that sees
only part of the thread (the final [CLS] of a window-only encoder sees ``6 k + 1`` tokens)
gets less evidence than one that sees all of it. Labels are balanced.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch


@dataclass
class Threads:
    """Documents as token ids, their labels, and where each tweet starts (token offsets)."""

    ids: list[list[int]]
    labels: torch.Tensor  # (N,)
    starts: list[list[int]]  # token offset of each tweet in the document
    tweet_labels: list[list[int]]

    def label_share(self, upto: int) -> torch.Tensor:
        """``(N,)``: share of the tweets starting before token ``upto`` that carry the label."""
        out = []
        for starts, tl, y in zip(self.starts, self.tweet_labels, self.labels.tolist()):
            seen = [lab for s, lab in zip(starts, tl) if s < upto]
            out.append(sum(lab == y for lab in seen) / max(len(seen), 1))
        return torch.tensor(out)


def make_threads(
    tweet_ids: list[list[int]],
    tweet_labels: list[int],
    n_docs: int,
    length: int,
    cls_id: int,
    sep_id: int,
    n_classes: int,
    major_share: float = 0.5,
    seed: int = 0,
) -> Threads:
    """``n_docs`` threads of exactly ``length`` tokens from tweets given as ids without specials."""
    if not 0 < major_share <= 1:
        raise ValueError(f"major_share must be in (0, 1], got {major_share}.")
    if length < 8:
        raise ValueError(f"length must be at least 8 tokens, got {length}.")
    by_class: list[list[int]] = [[] for _ in range(n_classes)]
    for i, lab in enumerate(tweet_labels):
        if tweet_ids[i]:
            by_class[lab].append(i)
    if any(not pool for pool in by_class):
        raise ValueError("Every class needs at least one tweet to build threads from.")
    rng = random.Random(seed)
    docs, labels, starts, tlabels = [], [], [], []
    for j in range(n_docs):
        label = j % n_classes
        body: list[int] = []
        doc_starts, doc_labels = [], []
        while len(body) < length - 2:
            if rng.random() < major_share:
                lab = label
            else:
                lab = rng.choice([c for c in range(n_classes) if c != label])
            doc_starts.append(len(body) + 1)  # +1: [CLS] comes first
            doc_labels.append(lab)
            body += tweet_ids[rng.choice(by_class[lab])]
        docs.append([cls_id, *body[: length - 2], sep_id])
        labels.append(label)
        starts.append(doc_starts)
        tlabels.append(doc_labels)
    order = list(range(n_docs))
    rng.shuffle(order)
    return Threads(
        ids=[docs[i] for i in order],
        labels=torch.tensor([labels[i] for i in order]),
        starts=[starts[i] for i in order],
        tweet_labels=[tlabels[i] for i in order],
    )
