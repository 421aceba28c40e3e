"""YAML 1.1 traps are read as meant or refused with their place; marks map back to FILE:LINE:COL."""

from __future__ import annotations

import pytest

from reconciler.fleetfile.yaml_source import load, plain_scalar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07:30", "07:30"),  # YAML 1.1: 450
        ("on", "on"),  # YAML 1.1: True
        ("off", "off"),
        ("yes", "yes"),
        ("no", "no"),
        ("01234567", "01234567"),  # YAML 1.1: octal 342391
        ("0x1F", "0x1F"),
        ("2026-11-25", "2026-11-25"),  # YAML 1.1: a date
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("", None),
        ("42", 42),
        ("-3", -3),
        ("1.5", 1.5),
        ("None", "None"),  # the retry policy's None stays a string
    ],
)
def test_plain_scalars_follow_yaml_1_2_without_octal_or_sexagesimal(text: str, expected: object) -> None:
    assert plain_scalar(text) == expected
    assert type(plain_scalar(text)) is type(expected)


def test_quoted_scalars_stay_text() -> None:
    source = load("a: \"true\"\nb: '42'\nc: !!str 7\n", "f.yaml")
    assert source.data == {"a": "true", "b": "42", "c": "7"}
    assert source.problems == []


def test_keys_are_read_as_written() -> None:
    source = load("on: 1\n12345: 2\nyes: 3\n", "f.yaml")
    assert source.data == {"on": 1, "12345": 2, "yes": 3}


def test_duplicate_key_is_refused_with_both_places() -> None:
    source = load("vehicles:\n  VF3ABCDE0FG123456: {}\n  VF3ABCDE0FG123456: {}\n", "fleet.yaml")
    [problem] = source.problems
    assert str(problem.location) == "fleet.yaml:3:3"
    assert "duplicate key 'VF3ABCDE0FG123456' (first at line 2)" in problem.message


def test_merge_keys_are_refused() -> None:
    source = load("base: &b {x: 1}\nother:\n  <<: *b\n", "f.yaml")
    assert [str(p.location) for p in source.problems] == ["f.yaml:3:3"]
    assert "merge keys" in source.problems[0].message


def test_syntax_error_is_located() -> None:
    source = load("a: [1, 2\nb: 3\n", "f.yaml")
    assert source.data is None
    [problem] = source.problems
    assert problem.location.file == "f.yaml"
    assert problem.location.line == 2
    assert "YAML syntax error" in problem.message


def test_locate_finds_values_keys_and_list_items() -> None:
    source = load("a:\n  b:\n    - x\n    - {c: 1}\n", "f.yaml")
    assert str(source.locate(("a", "b", 1, "c"))) == "f.yaml:4:11"
    assert str(source.locate(("a", "b", 1, "c"), key=True)) == "f.yaml:4:8"
    assert str(source.locate(("a", "b", 0))) == "f.yaml:3:7"
    # a missing key resolves to the nearest existing node: where to add it
    assert str(source.locate(("a", "missing"))) == "f.yaml:2:3"


def test_aliases_are_expanded() -> None:
    source = load("a: &x [1, 2]\nb: *x\n", "f.yaml")
    assert source.data == {"a": [1, 2], "b": [1, 2]}


def test_unknown_tags_are_refused() -> None:
    source = load("a: !!python/name:os.system x\n", "f.yaml")
    assert source.problems and "tag" in source.problems[0].message
