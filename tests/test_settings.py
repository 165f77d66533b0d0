"""Every field of every settings dataclass rejects bad values with an error naming that field.

The property test draws, for each field, values of a wrong type (derived from the annotation
here, independently of the checker) and values outside the field's declared rule, and asserts a
``SettingError`` that names the field and the value: never a TypeError or a library's error.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_exploration import settings as s
from llm_exploration.grpo.config import RULES as GRPO_RULES
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.riddles.train import SETTING_RULES, RiddleGRPOSettings
from llm_exploration.settings import Rule, SettingError
from llm_exploration.sparse.finetune import BUDGET_RULES, RUN_RULES, Budget, Run

VALID_RUN = {"task": "emotion", "schedule": "dense", "window": 2, "seed": 0}
CONFIGS = [(GRPOConfig, GRPO_RULES, {}), (RiddleGRPOSettings, SETTING_RULES, {}),
           (Budget, BUDGET_RULES, {}), (Run, RUN_RULES, VALID_RUN)]
# Rules given by a test function: invalid values written by hand.
BY_TEST = {"dataset": ["nope", "openai/gsm9k", ""], "devices": [0, -2],
           "output_dir": [""], "resume_from_checkpoint": ["missing.ckpt"],
           "schedule": ["every-0-dense", "half", "first--1-dense"]}
CASES = [(cls, f.name) for cls, _, _ in CONFIGS for f in dataclasses.fields(cls)]


def _arms(tp):
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType) else (tp,)


def wrong_type(tp) -> st.SearchStrategy:
    """Values that are not of type ``tp``: ints where no number is allowed, strings where no
    string is, None where None is not, lists of wrong items, non-finite floats, bools for
    numbers, ..."""
    arms = _arms(tp)
    origins = {typing.get_origin(a) or a for a in arms}
    literals = [v for a in arms if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
    pool = []
    if not {int, float} & origins:
        pool.append(st.integers())
    if float not in origins:
        pool.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()))
    else:
        pool.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    if bool not in origins:
        pool.append(st.booleans())
    if str not in origins:
        pool.append(st.text(max_size=6).filter(lambda t: t not in literals))
    if type(None) not in origins:
        pool.append(st.none())
    if list not in origins:
        pool.append(st.lists(st.integers(), max_size=3))
    if dict not in origins:
        pool.append(st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    for arm in arms:
        if typing.get_origin(arm) is list:
            pool.append(st.lists(wrong_type(typing.get_args(arm)[0]), min_size=1, max_size=3))
        if typing.get_origin(arm) is dict:
            pool.append(st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2))
    return st.one_of(pool)


def out_of_rule(tp, rule: Rule | None, name: str) -> st.SearchStrategy | None:
    """Values of the right type that the field's rule forbids (None when it forbids none)."""
    if name in BY_TEST:
        return st.sampled_from(BY_TEST[name])
    if rule is None:
        return None
    listy = any(typing.get_origin(a) is list for a in _arms(tp))
    if rule.choices is not None:
        bad = st.text(max_size=8).filter(lambda t: t not in rule.choices)
        return st.lists(bad, min_size=1, max_size=2) if listy else bad
    numbers = float in _arms(tp)
    options = []
    if rule.ge is not None:
        options.append(st.floats(max_value=rule.ge, exclude_max=True, allow_nan=False, allow_infinity=False)
                       if numbers else st.integers(max_value=math.ceil(rule.ge) - 1))
    if rule.gt is not None:
        options.append(st.floats(max_value=rule.gt, allow_nan=False, allow_infinity=False)
                       if numbers else st.integers(max_value=math.floor(rule.gt)))
    if rule.le is not None:
        options.append(st.floats(min_value=rule.le, exclude_min=True, allow_nan=False, allow_infinity=False))
    if rule.lt is not None:
        options.append(st.floats(min_value=rule.lt, allow_nan=False, allow_infinity=False))
    return st.one_of(options) if options else None


def _field(cls, name):
    rules, base = next((r, b) for c, r, b in CONFIGS if c is cls)
    tp = typing.get_type_hints(cls)[name]
    meta = next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("rule")
    return tp, rules.get(name, meta), base


@pytest.mark.parametrize("cls, name", CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_field_rejects_bad_values_by_name(cls, name, data):
    tp, rule, base = _field(cls, name)
    strategies = [wrong_type(tp)] + [x for x in [out_of_rule(tp, rule, name)] if x is not None]
    value = data.draw(st.one_of(strategies), label=name)
    with pytest.raises(SettingError) as err:
        cls(**{**base, name: value})
    assert err.value.setting == name, str(err.value)
    message = str(err.value)
    assert message.startswith(f"{name}=") and "is invalid: expected " in message
    assert "\n" not in message


@pytest.mark.parametrize("cls, name", [c for c in CASES if c[0] is GRPOConfig],
                         ids=[n for c, n in CASES if c is GRPOConfig])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_bad_values_from_set_and_yaml_name_their_source(cls, name, data, tmp_path_factory):
    tp, rule, _ = _field(cls, name)
    value = data.draw(st.one_of([x for x in (wrong_type(tp), out_of_rule(tp, rule, name)) if x is not None]))
    text = yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
    if s._from_text(yaml.safe_load(text), tp) != yaml.safe_load(text):
        return  # a string such as '1e5' that the loader rightly reads as a number
    with pytest.raises(SettingError, match=f"^{name}=.* \\(from --set\\) is invalid"):
        s.load(cls, None, [f"{name}={text}"])
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(yaml.safe_dump({name: value}))
    with pytest.raises(SettingError, match=f"^{name}=.* \\(from {path}, key {name}\\) is invalid"):
        GRPOConfig.from_yaml(path)


@pytest.mark.parametrize("cls, rules, base", CONFIGS, ids=[c.__name__ for c, _, _ in CONFIGS])
def test_defaults_are_valid_and_rules_name_real_fields(cls, rules, base):
    cls(**base)
    assert set(rules) <= {f.name for f in dataclasses.fields(cls)}


ANY_NUMBER = {(GRPOConfig, "reward_weights")}  # any finite weight (negative ones penalise)


@pytest.mark.parametrize("cls, name", CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_every_number_has_a_declared_range(cls, name):
    """A count, size, rate or coefficient without a range would accept -3 silently: declare one
    in the class's rules (or ``field(metadata={"rule": Rule(...)})``)."""
    tp, rule, _ = _field(cls, name)
    numeric = {int, float} & {typing.get_args(a)[0] if typing.get_origin(a) is list else a for a in _arms(tp)}
    if numeric and (cls, name) not in ANY_NUMBER:
        assert rule is not None, f"{cls.__name__}.{name} has no declared range"


def test_the_issue_cases():
    with pytest.raises(SettingError, match=r"^eval_size=-3 \(from --set\) is invalid: expected an integer >= 0"):
        s.load(GRPOConfig, None, ["eval_size=-3"])
    with pytest.raises(SettingError, match=r"^learning_rate='abc' \(from --set\) is invalid: expected a number > 0"):
        s.load(GRPOConfig, None, ["learning_rate=abc"])


# --- the checker itself -------------------------------------------------------------------------


@pytest.mark.parametrize("tp, rule, text", [
    (int, Rule(ge=1), "an integer >= 1"),
    (float, Rule(gt=0, le=1), "a number in (0, 1]"),
    (float | None, Rule(ge=0), "a number >= 0, or None"),
    (list[str], Rule(choices=("a", "b")), "a list, each one of 'a', 'b'"),
    (list[float] | None, Rule(ge=0), "a list of numbers, each >= 0, or None"),
    (int | str, None, "an integer or a string"),
    (typing.Literal["x", "y"], None, "one of 'x', 'y'"),
    (dict[str, typing.Any], None, "a mapping"),
])
def test_descriptions(tp, rule, text):
    assert s.describe(tp, rule) == text


def test_yaml_floats_without_a_dot_are_numbers():
    """YAML 1.1 reads 1e-5 as a string; a float field takes it as the number it means."""
    assert s.load(GRPOConfig, None, ["learning_rate=1e-5"]).learning_rate == 1e-5


def test_unknown_setting_suggests_the_close_name():
    with pytest.raises(SettingError, match=r"unknown setting 'learning_rat' \(from --set\).*did you mean learning_rate"):
        s.load(GRPOConfig, None, ["learning_rat=1"])


def test_errors_across_settings_name_where_they_came_from(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("num_generations: 4\n")
    with pytest.raises(SettingError, match=f"^settings from {path} and --set: .*not divisible"):
        s.load(GRPOConfig, path, ["per_device_train_batch_size=6"])
    with pytest.raises(SettingError, match=r"^--set: dataset_kwargs=\{'foo': 1\} do not fit"):
        s.load(GRPOConfig, path, ["dataset_kwargs={foo: 1}"])


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "expected a YAML mapping"),
    ("a: [1,\n", "expected a YAML file"),
])
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(SettingError, match=message):
        GRPOConfig.from_yaml(path)
