"""What `--input` and `--inputs` make of a command line."""

from __future__ import annotations

import click
import pytest

from pepper.cli.inputs import parse_inputs


def test_a_key_given_twice_with_input_is_refused_naming_it() -> None:
    with pytest.raises(click.BadParameter, match="'k' is given twice"):
        parse_inputs(["k=v", "other=1", "k=w"], None)


def test_an_input_replaces_the_same_key_of_the_inputs_document() -> None:
    assert parse_inputs(["k=[1, 2]"], '{"k": 0, "j": 1}') == {"k": [1, 2], "j": 1}
