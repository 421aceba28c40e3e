"""The README teaches with its examples: every complete fleet.yaml in it is a valid one."""

from __future__ import annotations

import re

import pytest
import yaml
from support.paths import ROOT

from reconciler.errors import ConfigError
from reconciler.fleetfile import loader
from reconciler.fleetfile.yaml_source import load

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.S)
FLEETS = [block for block in BLOCKS if block.lstrip().startswith(("apiVersion:", "# yaml-language-server"))]


def test_the_readme_has_complete_fleet_files() -> None:
    assert len(FLEETS) >= 1


@pytest.mark.parametrize("number", range(len(FLEETS)))
def test_every_complete_fleet_file_in_the_readme_validates(number: int) -> None:
    text = FLEETS[number]
    try:
        loader.parse(text, f"README.md fleet #{number + 1}", {}, offline=True)
    except ConfigError as exc:
        pytest.fail(f"README.md's fleet file #{number + 1} does not validate:\n{exc}\n---\n{text}")


TOP_LEVEL = set(loader.schema.fleet_schema()["properties"])
SNIPPETS = [
    block
    for block in BLOCKS
    if block not in FLEETS and block.split(":", 1)[0].strip() in TOP_LEVEL and not block.startswith("name:")
]


def test_the_readme_has_fleet_file_snippets() -> None:
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("number", range(len(SNIPPETS)))
def test_every_fleet_file_snippet_in_the_readme_validates_in_the_first_fleet(number: int) -> None:
    """A snippet (groups:, rollout: …) put into the README's first fleet file, its keys replacing the file's."""
    data = load(FLEETS[0], "README.md").data  # keys as fleet.yaml reads them (`on:` is "on")
    data.update(load(SNIPPETS[number], "README.md").data)
    try:
        loader.parse(yaml.safe_dump(data, sort_keys=False), f"README.md snippet #{number + 1}", {}, offline=True)
    except ConfigError as exc:
        pytest.fail(f"README.md's snippet #{number + 1} does not validate:\n{exc}\n---\n{SNIPPETS[number]}")
