"""Settings checked where they enter: type, range and allowed values, and where each came from.

A settings dataclass calls ``check(self, RULES)`` in its ``__post_init__``. Every field is checked
against its annotation (``int``, ``float``, ``str``, ``bool``, ``X | None``, ``list[X]``,
``dict[str, X]``, ``Literal[...]``), so a field added later is checked by type with no extra
code; a :class:`Rule` adds a range, allowed values or a test (given in ``RULES`` or as
``field(metadata={"rule": Rule(...)})``). A bad value raises :class:`SettingError`, which names
the setting, the value, what is allowed and, when it was read from text, where it came from:
:func:`load` builds a dataclass from a YAML file, ``--set field=value`` pairs and keyword
overrides and labels every error with its file and key or its ``--set``.

Command lines print an :class:`InputError` (the base of every "bad input" error) as one line and
exit with status 2 (see :mod:`llm_exploration.cli`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
NoneType = type(None)


class InputError(ValueError):
    """Bad input from a user (a setting, a name, a path): a command line prints it as one line
    and exits with status 2. Anything else that escapes a command is a bug (a traceback)."""


class SettingError(InputError):
    """A setting has a bad value.

    ``SettingError(setting=..., value=..., expected=...)`` reads ``learning_rate='abc' (from
    --set) is invalid: expected a number > 0.``; ``SettingError(message)`` carries a free
    message (checks across several settings). ``source`` says where the value came from and can
    be filled in later by the loader that knows (:meth:`from_source`)."""

    def __init__(self, message: str | None = None, *, setting: str | None = None,
                 value: Any = None, expected: str | None = None, source: str | None = None,
                 hint: str = "") -> None:
        super().__init__(message or setting)
        self.message, self.setting, self.value = message, setting, value
        self.expected, self.source, self.hint = expected, source, hint

    def from_source(self, source: str | None) -> SettingError:
        """Set where the value came from (unless already known); returns ``self``."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        if self.message is not None:
            return f"{self.source}: {self.message}" if self.source else self.message
        origin = f" (from {self.source})" if self.source else ""
        text = f"{self.setting}={show(self.value)}{origin} is invalid: expected {self.expected}."
        return f"{text} {self.hint}" if self.hint else text


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_of(choices: Iterable[Any]) -> str:
    """``"one of 'a', 'b', 'c'"``."""
    return "one of " + ", ".join(repr(c) for c in choices)


# --- rules -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a setting allows beyond its type: a range (for numbers), allowed values, or a test.

    For a list the rule applies to every item; ``None`` (where the type allows it) passes.
    ``expected`` describes ``test`` in words ("a reasoning-gym task name or 'openai/gsm8k'")."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None
    test: Callable[[Any], bool] | None = None
    expected: str = ""
    hint: str = ""

    def allows(self, value: Any) -> bool:
        if self.choices is not None and value not in self.choices:
            return False
        if _is_number(value):
            bounds = ((self.ge, value.__ge__), (self.gt, value.__gt__),
                      (self.le, value.__le__), (self.lt, value.__lt__))
            if any(b is not None and not op(b) for b, op in bounds):
                return False
        return self.test is None or bool(self.test(value))

    def describe(self) -> str:
        """The rule in words: ``"> 0"``, ``"in [0, 1)"``, ``"one of 'a', 'b'"``."""
        if self.expected:
            return self.expected
        if self.choices is not None:
            return one_of(self.choices)
        low = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        high = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        for bound, sign in ((self.ge, ">="), (self.gt, ">"), (self.le, "<="), (self.lt, "<")):
            if bound is not None:
                return f"{sign} {bound:g}"
        return ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- types -------------------------------------------------------------------------------------


def _arms(tp: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``int | None`` -> ``(int, NoneType)``), else ``(tp,)``."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(tp)
    return (tp,)


def matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` has type ``tp`` (bools are not numbers; floats must be finite)."""
    if tp is Any or tp is object:
        return True
    if tp is NoneType or tp is None:
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return any(matches(value, arm) for arm in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return _is_number(value) and math.isfinite(value)
    if tp is Path:
        return isinstance(value, (str, Path))
    if origin in (list, tuple, abc.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(matches, value, args))
        return all(matches(v, args[0] if args else Any) for v in value)
    if origin in (dict, abc.Mapping) or tp is dict:
        key, item = args if args else (Any, Any)
        return isinstance(value, Mapping) and all(
            matches(k, key) and matches(v, item) for k, v in value.items())
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # a typing construct this checker does not know: not checked


_NOUNS = {bool: ("true or false", "booleans"), int: ("an integer", "integers"),
          float: ("a number", "numbers"), str: ("a string", "strings"), Path: ("a path", "paths")}


def _noun(tp: Any, plural: bool = False) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return one_of(args)
    if tp in _NOUNS:
        return _NOUNS[tp][plural]
    if origin in (list, tuple, abc.Sequence) or tp in (list, tuple):
        inner = _noun(args[0], plural=True) if args else "values"
        return f"lists of {inner}" if plural else f"a list of {inner}"
    if origin in (dict, abc.Mapping) or tp is dict:
        return "mappings" if plural else "a mapping"
    if len(_arms(tp)) > 1:
        return " or ".join(_noun(a, plural) for a in _arms(tp))
    name = getattr(tp, "__name__", str(tp))
    return f"{name} values" if plural else f"a {name}"


def describe(tp: Any, rule: Rule | None = None) -> str:
    """What a setting of type ``tp`` under ``rule`` allows, in words (``"an integer >= 1, or
    None"``)."""
    arms = _arms(tp)
    kinds = [a for a in arms if a is not NoneType and a is not None]
    condition = rule.describe() if rule is not None else ""
    whole = rule is not None and (rule.choices is not None or bool(rule.expected))  # no noun
    parts = []
    for kind in kinds:
        listy = typing.get_origin(kind) in (list, tuple, abc.Sequence)
        if whole:
            parts.append(f"a list, each {condition}" if listy else condition)
        elif listy and condition:
            parts.append(f"{_noun(kind)}, each {condition}")
        else:
            parts.append(f"{_noun(kind)} {condition}".strip())
    text = " or ".join(dict.fromkeys(parts))
    return f"{text}, or None" if len(kinds) < len(arms) else text


# --- checking ----------------------------------------------------------------------------------


def check_value(setting: str, value: Any, tp: Any, rule: Rule | None = None,
                source: str | None = None, *, type_only: bool = False) -> Any:
    """Return ``value`` if it has type ``tp`` and passes ``rule``, else raise SettingError
    (whose message states the type and the rule either way)."""
    ok, hint = matches(value, tp), rule.hint if rule is not None else ""
    if ok and rule is not None and value is not None and not type_only:
        items = value if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in items if not rule.allows(v)]
        ok = not bad
        if bad and items is value:
            hint = f"Not allowed: {', '.join(show(v) for v in bad)}. {hint}".strip()
    if not ok:
        raise SettingError(setting=setting, value=value, expected=describe(tp, rule),
                           source=source, hint=hint)
    return value


@cache
def _fields(cls: type) -> tuple[tuple[str, Any, Rule | None], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name], f.metadata.get("rule"))
                 for f in dataclasses.fields(cls) if f.init)


def check(obj: Any, rules: Mapping[str, Rule] | None = None) -> None:
    """Check every field of the dataclass instance ``obj``: first all types, then all rules.

    ``rules`` maps field names to :class:`Rule`; a rule can also sit in the field's metadata
    (``field(metadata={"rule": Rule(gt=0)})``). Raises :class:`SettingError` for the first bad
    field (a rule naming no field is a bug: TypeError)."""
    fields = _fields(type(obj))
    rules = dict(rules or {})
    unknown = set(rules) - {name for name, _, _ in fields}
    if unknown:
        raise TypeError(f"rules for {type(obj).__name__} name no field: {sorted(unknown)}")
    for type_only in (True, False):
        for name, tp, rule in fields:
            check_value(name, getattr(obj, name), tp, rules.get(name, rule), type_only=type_only)


# --- loading from text -------------------------------------------------------------------------


def read_yaml(path: str | Path, setting: str = "config", source: str | None = None) -> dict[str, Any]:
    """The mapping in the YAML file ``path``; a SettingError (naming ``setting``) when the file is
    missing, unreadable, not YAML, or not a mapping."""
    file = Path(path)
    if not file.is_file():
        raise SettingError(setting=setting, value=str(path), source=source,
                           expected="a YAML file", hint=f"No such file: {file.resolve()}.")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SettingError(setting=setting, value=str(path), source=source, expected="a YAML file",
                           hint=" ".join(str(err).split())) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingError(setting=setting, value=str(path), source=source,
                           expected="a YAML mapping of setting names to values",
                           hint=f"The file holds a {type(data).__name__}.")
    return data


def parse_assignments(pairs: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """``["max_steps=5", "loss_type=dapo"]`` -> ``{"max_steps": 5, "loss_type": "dapo"}``
    (values parsed as YAML: ``5`` is an int, ``[a, b]`` a list, ``null`` None)."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise SettingError(f"{flag} {pair!r}: write field=value, e.g. {flag} max_steps=5.")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SettingError(f"{flag} {pair!r}: the value is not valid YAML "
                               f"({' '.join(str(err).split())}).") from None
    return out


def _from_text(value: Any, tp: Any) -> Any:
    """YAML 1.1 reads ``1e-5`` as a string: make it a float where the field wants a number."""
    arms = _arms(tp)
    if isinstance(value, str) and float in arms and str not in arms:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load(cls: type[T], path: str | Path | None = None, sets: Iterable[str] = (), /,
         **overrides: Any) -> T:
    """Build the settings dataclass ``cls`` from a YAML file, then ``--set field=value`` pairs,
    then keyword ``overrides`` (later wins). Unknown names and bad values raise SettingError
    saying where the value came from (``file, key k`` or ``--set``)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        data = read_yaml(path)
        values.update(data)
        sources.update({key: f"{path}, key {key}" for key in data})
    assigned = parse_assignments(sets)
    values.update(assigned)
    sources.update({key: "--set" for key in assigned})
    values.update(overrides)
    for key in overrides:
        sources.pop(key, None)
    hints = {name: tp for name, tp, _ in _fields(cls)}
    for key in values:
        if key not in hints:
            close = difflib.get_close_matches(str(key), hints, n=3)
            allowed = (f"did you mean {' or '.join(close)}?" if close
                       else f"valid: {', '.join(hints)}.")
            where = f" (from {sources[key]})" if key in sources else ""
            raise SettingError(f"unknown setting {key!r}{where}: {cls.__name__} has no such field; "
                               f"{allowed}")
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise SettingError(f"{cls.__name__} needs {', '.join(missing)}: give a value for each.")
    values = {key: _from_text(value, hints[key]) if key in sources else value
              for key, value in values.items()}
    try:
        return cls(**values)
    except SettingError as err:
        whole = " and ".join(([str(path)] if path is not None else []) + (["--set"] if assigned else []))
        where = sources.get(err.setting) if err.setting else (whole and f"settings from {whole}")
        raise err.from_source(where or None) from None
