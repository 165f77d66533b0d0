"""Threads of tweets: exact length, balanced labels, the label spread over the document."""

from __future__ import annotations

import pytest
import torch

from llm_exploration.sparse.threads import make_threads


def _tweets():
    ids = [[10 + c] * (3 + i % 5) for c in range(4) for i in range(20)]
    labels = [c for c in range(4) for _ in range(20)]
    return ids, labels


def test_threads_have_the_length_labels_and_composition_asked_for():
    ids, labels = _tweets()
    th = make_threads(ids, labels, n_docs=40, length=64, cls_id=1, sep_id=2, n_classes=4, seed=0)
    assert all(len(d) == 64 and d[0] == 1 and d[-1] == 2 for d in th.ids)
    assert torch.bincount(th.labels).tolist() == [10] * 4
    # tokens are the class id + 10: the label's tokens are the most frequent ones on average
    share = torch.tensor(
        [sum(t == 10 + y for t in d[1:-1]) / 62 for d, y in zip(th.ids, th.labels.tolist())]
    )
    assert share.mean() > 0.4
    assert th.label_share(64).mean() == pytest.approx(share.mean().item(), abs=0.1)
    again = make_threads(ids, labels, n_docs=40, length=64, cls_id=1, sep_id=2, n_classes=4, seed=0)
    assert again.ids == th.ids


def test_bad_settings_are_named():
    ids, labels = _tweets()
    with pytest.raises(ValueError, match="major_share"):
        make_threads(ids, labels, 4, 64, 1, 2, 4, major_share=0)
    with pytest.raises(ValueError, match="Every class"):
        make_threads(ids, labels, 4, 64, 1, 2, 5)
