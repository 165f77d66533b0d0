"""Reward functions with TRL's signature, so the same functions plug into ``trl.GRPOTrainer``.

Convention (TRL's): ``f(prompts, completions, **columns) -> list[float | None]``, one value per
completion. ``completions`` are strings (standard format) or lists of chat messages
(conversational format, ``[{"role": "assistant", "content": "..."}]``); dataset columns arrive
as keyword lists (e.g. ``answer=[...]``), one entry per completion; unknown keywords (TRL also
passes ``completion_ids``, ``trainer_state``, ``log_extra``, ``log_metric``) are ignored.
``None`` means "this function does not apply to this sample" (TRL turns it into NaN and
leaves it out of the mean).

The expected completion format is ``<think> reasoning </think> <answer> final answer </answer>``.
All parsing is linear-time string scanning (``str.find`` and simple regexes without nested
quantifiers) and never evaluates model output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

# A number: optional sign, digits with optional thousands commas, optional decimals; or a
# leading-dot decimal. No nested quantifiers, so matching is linear in the input length.
_NUMBER = re.compile(r"[-+\u2212]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")
_MAX_NUMBER_CHARS = 200  # numbers longer than this are not numbers an answer can be compared on

RewardFunc = Callable[..., list[float | None]]


def completion_text(completion: str | Sequence[dict[str, Any]] | Any) -> str:
    """The text of one completion: a string as is; for chat messages, the last message's content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        if not completion:
            return ""
        last = completion[-1]
        if isinstance(last, dict):
            content = last.get("content", "")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # multimodal-style content blocks
                return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return "" if completion is None else str(completion)


def extract_answer(text: str) -> str | None:
    """The stripped text inside the last ``<answer>…</answer>`` pair, or None if there is none."""
    end = text.rfind(ANSWER_CLOSE)
    if end < 0:
        return None
    start = text.rfind(ANSWER_OPEN, 0, end)
    if start < 0:
        return None
    return text[start + len(ANSWER_OPEN) : end].strip()


def is_strict_format(text: str) -> bool:
    """True iff the text is exactly ``<think>…</think>`` then ``<answer>…</answer>`` (whitespace
    around the blocks allowed), each tag once, the answer non-empty."""
    if any(text.count(tag) != 1 for tag in TAGS):
        return False
    s = text.strip()
    if not (s.startswith(THINK_OPEN) and s.endswith(ANSWER_CLOSE)):
        return False
    i_tc, i_ao = s.find(THINK_CLOSE), s.find(ANSWER_OPEN)
    if not (len(THINK_OPEN) <= i_tc < i_ao):
        return False
    if s[i_tc + len(THINK_CLOSE) : i_ao].strip():
        return False
    return bool(s[i_ao + len(ANSWER_OPEN) : -len(ANSWER_CLOSE)].strip())


def soft_format_score(text: str) -> float:
    """Graded format credit in [0, 1]: 0.25 for each of the four tags that appears exactly once;
    if all four appear once but out of order, 0.5. Gives a gradient toward the format even when
    no sample of a group is fully formatted."""
    once = [text.count(tag) == 1 for tag in TAGS]
    score = 0.25 * sum(once)
    if all(once):
        positions = [text.find(tag) for tag in TAGS]
        if positions != sorted(positions):
            score = 0.5
    return score


def _decimal(token: str) -> Decimal | None:
    token = token.replace(",", "").replace("\u2212", "-").lstrip("+")
    if not token or len(token) > _MAX_NUMBER_CHARS:
        return None
    try:
        return Decimal(token)
    except InvalidOperation:
        return None


def normalize_number(text: str | None) -> Decimal | None:
    """Parse an answer string as one number: strips ``$``, ``%``, thousands commas, spaces, a
    trailing period, a unicode minus and surrounding text like units; ``a/b`` fractions are
    evaluated as exact rationals. Returns None if the text holds no single number."""
    if text is None:
        return None
    s = text.strip().replace("$", "").replace("%", "").replace("\u2212", "-")
    if len(s) > 10 * _MAX_NUMBER_CHARS:
        return None
    frac = re.fullmatch(r"\s*([-+]?\d{1,50})\s*/\s*(\d{1,50})\s*", s)
    if frac:
        num, den = int(frac.group(1)), int(frac.group(2))
        if den == 0:
            return None
        f = Fraction(num, den)
        return Decimal(f.numerator) / Decimal(f.denominator)
    numbers = _NUMBER.findall(s)
    if len(numbers) != 1:
        return None
    return _decimal(numbers[0])


def last_number(text: str) -> Decimal | None:
    """The last number anywhere in the text (the lenient answer), or None."""
    for token in reversed(_NUMBER.findall(text)):
        value = _decimal(token)
        if value is not None:
            return value
    return None


def reference_answer(answer: Any) -> str:
    """The final answer of a reference: GSM8K solutions end with ``#### N``; else the string."""
    s = str(answer)
    cut = s.rfind("####")
    return s[cut + 4 :].strip() if cut >= 0 else s.strip()


def answers_match(predicted: str | None, reference: Any) -> bool:
    """Numeric equality when both sides parse as numbers (so ``1,000.0`` == ``1000``), else
    case- and space-insensitive string equality."""
    if predicted is None:
        return False
    ref = reference_answer(reference)
    p_num, r_num = normalize_number(predicted), normalize_number(ref)
    if r_num is not None:
        return p_num is not None and p_num == r_num
    return " ".join(predicted.lower().split()) == " ".join(ref.lower().split())


# --- the reward functions (TRL signature) ----------------------------------------------------


def format_strict_reward(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
    """1.0 if the completion is exactly ``<think>…</think><answer>…</answer>``, else 0.0."""
    return [1.0 if is_strict_format(completion_text(c)) else 0.0 for c in completions]


def format_soft_reward(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
    """Partial credit in [0, 1] for the tags (see ``soft_format_score``)."""
    return [soft_format_score(completion_text(c)) for c in completions]


def correctness_reward(prompts: list, completions: list, answer: list | None = None,
                       **kwargs: Any) -> list[float | None]:
    """1.0 if the text inside the last ``<answer>`` tags equals the reference ``answer`` column
    (numbers compared after normalisation; GSM8K ``#### N`` references understood), else 0.0.
    None where the sample has no reference."""
    if answer is None:
        raise ValueError("correctness_reward needs an `answer` column in the dataset.")
    return [None if ref is None else float(answers_match(extract_answer(completion_text(c)), ref))
            for c, ref in zip(completions, answer, strict=True)]


def lenient_correctness_reward(prompts: list, completions: list, answer: list | None = None,
                               **kwargs: Any) -> list[float | None]:
    """1.0 if the last number anywhere in the completion equals the numeric reference, else 0.0
    (None where the reference is not a number)."""
    if answer is None:
        raise ValueError("lenient_correctness_reward needs an `answer` column in the dataset.")
    out: list[float | None] = []
    for c, ref in zip(completions, answer, strict=True):
        r = normalize_number(reference_answer(ref)) if ref is not None else None
        if r is None:
            out.append(None)
        else:
            p = last_number(completion_text(c))
            out.append(float(p is not None and p == r))
    return out


REWARD_FUNCS: dict[str, RewardFunc] = {
    "format_strict": format_strict_reward,
    "format_soft": format_soft_reward,
    "correctness": correctness_reward,
    "lenient_correctness": lenient_correctness_reward,
}
"""Built-in reward functions by the name used in configs and metric names."""
