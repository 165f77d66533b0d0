"""Chat prompts for riddles, with worked examples that seed the answer format.

SmolLM2-135M-Instruct never writes ``<answer>`` tags from an instruction alone (measured on this
project's machines: 0 of 712 samples), so a format reward has nothing to reinforce. Each prompt
therefore carries the "shot" riddles as earlier user/assistant turns, answered in the exact
format ``<think> … </think> <answer> … </answer>``.
"""

from __future__ import annotations

from llm_exploration.grpo.rewards import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from llm_exploration.riddles.data import Riddle, load_riddles

SYSTEM_PROMPT = (
    "You solve riddles. First think briefly inside <think> </think>, then give only the "
    "answer, one or two words, inside <answer> </answer>."
)

Message = dict[str, str]


def worked_examples(n: int = 2) -> list[Riddle]:
    """The first ``n`` riddles of the "shot" split, shown as solved examples in every prompt.

    One example costs about 65 prompt tokens; on a CPU every prompt token is paid for again in
    each training step's forward and backward pass."""
    shots = load_riddles("shot")
    if not 0 <= n <= len(shots):
        raise ValueError(f"n={n} worked examples asked for; the riddle set has {len(shots)}.")
    return shots[:n]


def format_reply(reasoning: str, answer: str) -> str:
    """An assistant reply in the expected format."""
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}\n{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def riddle_messages(riddle: Riddle | str, shots: list[Riddle] | None = None) -> list[Message]:
    """The conversation for one riddle: system prompt, worked examples, then the riddle.

    ``shots`` defaults to two worked examples; pass ``[]`` for a zero-shot prompt."""
    shots = worked_examples() if shots is None else shots
    messages: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for shot in shots:
        messages.append({"role": "user", "content": shot.riddle})
        messages.append({"role": "assistant", "content": format_reply(shot.reasoning, shot.answer)})
    text = riddle.riddle if isinstance(riddle, Riddle) else riddle
    messages.append({"role": "user", "content": text})
    return messages


def riddle_dataset_rows(riddles: list[Riddle], shots: list[Riddle] | None = None) -> list[dict]:
    """Rows for TRL's GRPOTrainer: a conversational ``prompt`` plus the columns the rewards read
    (``answer``, ``aliases``) and ``id``/``kind`` for the logs."""
    shots = worked_examples() if shots is None else shots
    return [{"prompt": riddle_messages(r, shots), "answer": r.answer, "aliases": list(r.aliases),
             "id": r.id, "kind": r.kind} for r in riddles]
