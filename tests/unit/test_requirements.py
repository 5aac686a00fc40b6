"""Requirements parsed from plain dicts are kept by what decides their parse: equal input, equal answer, and
input that is refused is refused every time with the same typed error."""

from __future__ import annotations

from typing import Any

import pytest

from pepper.errors import ValidationError
from pepper.model import requirements
from pepper.model.requirements import Requirements
from pepper.model.resources import Resources


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    requirements._parsed.clear()


def test_equal_dicts_get_the_same_requirements_without_parsing_again(monkeypatch: pytest.MonkeyPatch) -> None:
    parses = [0]
    parse = Requirements._parse.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Requirements], value: Any) -> Requirements:
        parses[0] += 1
        return parse(cls, value)  # type: ignore[no-any-return]

    monkeypatch.setattr(Requirements, "_parse", classmethod(counted))
    first = Requirements.parse({"skills": ["py", " go "], "performance_score": 0.5, "availability": True})
    again = Requirements.parse({"skills": ["py", " go "], "performance_score": 0.5, "availability": True})
    assert again is first and parses[0] == 1
    assert first == Requirements(frozenset({"py", "go"}), performance_score=0.5, availability=True)
    assert Requirements.parse({"skills": ("py", " go "), "performance_score": 0.5, "availability": True}) == first
    assert parses[0] == 2  # a tuple is told apart from a list (it parses alike)


def test_a_list_changed_after_a_parse_is_parsed_as_it_is_now() -> None:
    skills = ["py"]
    asked = {"skills": skills}
    assert Requirements.parse(asked).skills == {"py"}
    skills.append("gpu")
    assert Requirements.parse(asked).skills == {"py", "gpu"}
    asked["availability"] = True
    assert Requirements.parse(asked) == Requirements(frozenset({"py", "gpu"}), availability=True)


@pytest.mark.parametrize(
    ("good", "bad", "message"),
    [
        ({"performance_score": 1}, {"performance_score": True}, "performance_score must be a number"),
        ({"availability": True}, {"availability": 1}, "availability must be True or False"),
        ({"performance_score": 0}, {"performance_score": False}, "performance_score must be a number"),
        ({"skills": ["a"]}, {"skills": ["a", 1]}, "skills must contain non-empty strings"),
        ({"skills": ["a"]}, {"skills": ["a", ""]}, "skills must contain non-empty strings"),
        ({"skills": "a"}, {"skills": 1}, "skills must be a list of strings"),
    ],
)
def test_a_value_equal_to_a_kept_one_but_of_another_type_is_still_refused(
    good: dict[str, Any], bad: dict[str, Any], message: str
) -> None:
    Requirements.parse(good)
    for _ in range(2):  # refused every time: a refusal is never kept
        with pytest.raises(ValidationError, match=message):
            Requirements.parse(bad)
    assert len(requirements._parsed) == 1  # only the good one


def test_a_string_is_parsed_as_names_separated_by_commas_and_a_list_of_it_as_one_name() -> None:
    assert Requirements.parse({"skills": "py, go"}).skills == {"py", "go"}
    assert Requirements.parse({"skills": ["py, go"]}).skills == {"py, go"}
    assert Requirements.parse({"skills": "py, go"}).skills == {"py", "go"}


def test_an_unknown_key_is_refused_every_time_with_what_is_valid() -> None:
    for _ in range(2):
        with pytest.raises(ValidationError, match=r"unknown requirement 'skill'; valid keys: skills, .*skills"):
            Requirements.parse({"skill": ["py"]})
    assert requirements._parsed == {}


def test_values_of_other_kinds_are_parsed_every_time() -> None:
    class Name(str):
        pass

    with_resources = {"skills": ["py"], "resources": {"cpu": 2}}
    assert Requirements.parse(with_resources).resources == Resources({"cpu": 2})
    assert Requirements.parse({"skills": [Name("py")]}).skills == {"py"}
    assert Requirements.parse({"skills": {"py"}}).skills == {"py"}
    assert requirements._parsed == {}
    with_resources["resources"] = {"cpu": "many"}
    with pytest.raises(ValidationError, match="cpu"):
        Requirements.parse(with_resources)


def test_the_kept_requirements_are_bounded() -> None:
    for i in range(requirements._PARSED_MAX + 10):
        assert Requirements.parse({"skills": [f"skill-{i}"]}).skills == {f"skill-{i}"}
    assert len(requirements._parsed) <= requirements._PARSED_MAX
    assert Requirements.parse({"skills": ["skill-0"]}).skills == {"skill-0"}
