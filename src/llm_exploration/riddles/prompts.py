"""Chat prompts for riddles and where the answer sits in a reply.

Two reply forms:

- **direct** (``think=False``, the ``cpu`` profile): the reply *is* the answer; its first
  non-empty line is read. SmolLM2-135M-Instruct answers this way on its own; it never writes
  ``<answer>`` tags from an instruction alone (0 of 712 samples on this project's machines), and
  every prompt and completion token costs CPU time in every GRPO step.
- **think** (``think=True``, the ``gpu`` profile): ``<think> … </think> <answer> … </answer>``,
  the answer read from the last answer tags, with worked examples ("shot" riddles) as earlier
  turns to seed the format.

Each riddle is asked either as multiple choice (a :class:`~choices.ChoiceItem`, candidates
lettered A, B, C, …) or free-form (a bare :class:`~data.Riddle`).
"""

from __future__ import annotations

from llm_exploration.grpo.rewards import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, extract_answer
from llm_exploration.riddles.choices import LETTERS, ChoiceItem
from llm_exploration.riddles.data import Riddle, load_riddles

SYSTEM_CHOICE = "Solve the riddle. Reply with the option that fits and nothing else."
SYSTEM_FREE = "Solve the riddle. Reply with the answer, one or two words, and nothing else."
SYSTEM_THINK = (
    "You solve riddles. First think briefly inside <think> </think>, then give only the "
    "answer inside <answer> </answer>: for a riddle with options, the option that fits; "
    "otherwise one or two words."
)

Message = dict[str, str]


def worked_examples(n: int = 2) -> list[Riddle]:
    """The first ``n`` riddles of the "shot" split, solved in the prompt in the think form."""
    shots = load_riddles("shot")
    if not 0 <= n <= len(shots):
        raise ValueError(f"n={n} worked examples asked for; the riddle set has {len(shots)}.")
    return shots[:n]


def format_reply(reasoning: str, answer: str) -> str:
    """An assistant reply in the think form."""
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}\n{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def question_text(item: ChoiceItem | Riddle) -> str:
    """What the user says: the riddle, and for a multiple-choice item its lettered candidates."""
    if isinstance(item, Riddle):
        return item.riddle
    options = "\n".join(f"{LETTERS[k]}) {option}" for k, option in enumerate(item.options))
    return f"{item.text}\n{options}"


def riddle_messages(item: ChoiceItem | Riddle, *, think: bool = False,
                    shots: list[Riddle] | None = None) -> list[Message]:
    """The conversation for one riddle: system prompt, (think form) worked examples, the riddle."""
    if not think:
        if shots:
            raise ValueError("worked examples are shown only in the think form (think=True).")
        system = SYSTEM_CHOICE if isinstance(item, ChoiceItem) else SYSTEM_FREE
        return [{"role": "system", "content": system}, {"role": "user", "content": question_text(item)}]
    messages: list[Message] = [{"role": "system", "content": SYSTEM_THINK}]
    for shot in worked_examples() if shots is None else shots:
        messages.append({"role": "user", "content": shot.riddle})
        messages.append({"role": "assistant", "content": format_reply(shot.reasoning, shot.answer)})
    messages.append({"role": "user", "content": question_text(item)})
    return messages


def reply_answer(reply: str, think: bool = False) -> str | None:
    """The answer in a reply: the first non-empty line (direct form) or the text inside the last
    ``<answer>`` tags (think form); None when there is none."""
    if think:
        return extract_answer(reply)
    for line in reply.splitlines():
        if line.strip():
            return line.strip()
    return None


def line_stop_ids(tokenizer) -> list[int]:
    """The end-of-sequence token and every token that contains a newline: in the direct form
    a reply ends with its first line (only that line is read), so sampling stops there."""
    vocab = tokenizer.get_vocab()
    newline = sorted(i for t, i in vocab.items() if "\n" in tokenizer.convert_tokens_to_string([t]))
    return [tokenizer.eos_token_id, *newline]


def riddle_dataset_rows(items: list[ChoiceItem] | list[Riddle], *, think: bool = False,
                        shots: list[Riddle] | None = None) -> list[dict]:
    """Rows for TRL's GRPOTrainer: a conversational ``prompt`` plus the columns the rewards read
    (``answer``, ``aliases``, ``options``, ``correct``, ``think``) and ``id``/``kind``."""
    rows = []
    for item in items:
        riddle = item if isinstance(item, Riddle) else item.riddle
        choice = isinstance(item, ChoiceItem)
        rows.append({"prompt": riddle_messages(item, think=think, shots=shots), "answer": riddle.answer,
                     "aliases": list(riddle.aliases), "options": list(item.options) if choice else [],
                     "correct": item.correct if choice else -1, "think": think, "id": riddle.id,
                     "kind": riddle.kind})
    return rows
