"""The riddle set written for this project (package data) and the hub set for the gpu profile.

``data/riddles.jsonl`` holds one riddle a line: ``id``, ``riddle`` (our own wording),
``answer`` (canonical), ``aliases`` (other accepted answers), ``kind`` ("descriptive": the clues
describe the thing; "wordplay": the answer rests on a double meaning, a pun or letters), a
fixed ``split``: "train", "test" (held out) or "shot" (worked examples for prompts that ask
for reasoning, with a one-sentence ``reasoning``), and for every test riddle and some training
riddles a ``reworded`` version: the same answer in new words (BrainTeaser's "semantic
reconstruction"), to tell a model that learned riddles from one that learned the training set.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources

from llm_exploration.riddles.answers import normalise_answer

SPLITS = ("train", "test", "shot")
KINDS = ("descriptive", "wordplay")
HUB_ID = "Hypersniper/riddles_v1"
HUB_MAX_ANSWER_WORDS = 3  # hub rows whose answer is longer are explanations, not answers


@dataclass(frozen=True)
class Riddle:
    """One riddle with its accepted answers."""

    id: str
    riddle: str
    answer: str
    aliases: tuple[str, ...] = ()
    kind: str = "wordplay"
    split: str = "train"
    reasoning: str = ""  # only for "shot" riddles: the worked reasoning shown in the prompt
    reworded: str = ""  # the same riddle in new words, same answer ("" when not written)
    source: str = field(default="llm-exploration", compare=False)

    def row(self) -> dict:
        """A plain dict (aliases as a list), e.g. for ``datasets.Dataset.from_list``."""
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


def _validate(riddles: list[Riddle]) -> None:
    seen_ids, seen_texts = set(), set()
    for r in riddles:
        problems = []
        if r.id in seen_ids:
            problems.append("duplicate id")
        text = normalise_answer(r.riddle)
        if text in seen_texts:
            problems.append("duplicate riddle text")
        if r.reworded and normalise_answer(r.reworded) in seen_texts | {text}:
            problems.append("rewording repeats a riddle text")
        if not normalise_answer(r.answer):
            problems.append("empty answer")
        if r.split not in SPLITS:
            problems.append(f"split {r.split!r} not in {SPLITS}")
        if r.kind not in KINDS:
            problems.append(f"kind {r.kind!r} not in {KINDS}")
        if problems:
            raise ValueError(f"riddles.jsonl, riddle {r.id!r}: {', '.join(problems)}.")
        seen_ids.add(r.id)
        seen_texts.add(text)


def load_riddles(split: str | None = None) -> list[Riddle]:
    """The project's riddles, in file order; ``split`` in ("train", "test", "shot") or None for all."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split={split!r}: choose one of {SPLITS} or None for all riddles.")
    text = resources.files("llm_exploration.riddles").joinpath("data/riddles.jsonl").read_text("utf-8")
    riddles = []
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            row["aliases"] = tuple(row.get("aliases", ()))
            riddles.append(Riddle(**row))
    _validate(riddles)
    return [r for r in riddles if split is None or r.split == split]


def _pick(columns: list[str], candidates: tuple[str, ...], what: str) -> str:
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(
        f"{HUB_ID} has no {what} column (looked for {', '.join(candidates)}; found "
        f"{', '.join(columns)}). Update llm_exploration.riddles.data.load_hub_riddles."
    )


def load_hub_riddles(max_answer_words: int = HUB_MAX_ANSWER_WORDS) -> tuple[list[Riddle], int]:
    """Riddles from the hub dataset ``Hypersniper/riddles_v1`` (gpu profile), as training riddles.

    Only rows with a short answer (at most ``max_answer_words`` words after normalisation) are
    kept, because the correctness reward compares answers by equality. Returns the riddles and
    how many rows were dropped. Raises ``ConnectionError`` when neither the hub nor a data mirror
    (``LLM_EXPLORATION_DATA_MIRROR``) has the dataset.
    """
    from llm_exploration.data import load_dataset

    ds = load_dataset(HUB_ID, split="train")
    q_col = _pick(ds.column_names, ("riddle", "question", "instruction", "input"), "riddle")
    a_col = _pick(ds.column_names, ("answer", "correct_answer", "output", "response"), "answer")
    riddles, dropped = [], 0
    for i, row in enumerate(ds):
        question, answer = str(row[q_col] or "").strip(), str(row[a_col] or "").strip()
        n_words = len(normalise_answer(answer).split())
        if not question or not 0 < n_words <= max_answer_words:
            dropped += 1
            continue
        riddles.append(Riddle(id=f"hub{i:04d}", riddle=question, answer=answer, kind="unlabelled",
                              split="train", source=HUB_ID))
    return riddles, dropped
