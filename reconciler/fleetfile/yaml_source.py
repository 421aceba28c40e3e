"""Reading a YAML file into plain data without YAML 1.1's surprises, keeping marks.

PyYAML implements YAML 1.1, which silently turns an unquoted ``07:30`` into the
integer 450, ``on``/``off``/``yes``/``no`` into booleans and ``01234567`` into
an octal number, and keeps the last of two duplicate keys. Here LibYAML only
parses and composes (fast, in C); the scalars are then typed with the YAML 1.2
core rules (``true``/``false``, ``null``, decimal numbers), so each of those
reads as the text the user wrote, and duplicate keys are refused with both
places. The composed node tree is kept so that any path into the data can be
mapped back to ``FILE:LINE:COL``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Location, Problem

Path = Sequence[Hashable]

# Tags our resolver hands LibYAML's composer instead of YAML 1.1's guesses.
_PLAIN = "!reconciler/plain"
_QUOTED = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?\Z")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


class _Loader(yaml.CSafeLoader):
    """LibYAML's parser and composer with a resolver that defers typing to us."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _QUOTED
        return _SEQ if kind is yaml.SequenceNode else _MAP


def plain_scalar(text: str) -> Any:
    """Type an unquoted scalar by the YAML 1.2 core schema, with no octal or sexagesimal."""
    if text in _NULLS:
        return None
    boolean = _BOOLS.get(text)
    if boolean is not None:
        return boolean
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


@dataclass
class Source:
    """A loaded YAML document: its data, and the nodes to locate any path in it."""

    name: str
    data: Any
    root: yaml.Node | None
    problems: list[Problem] = field(default_factory=list)
    _key_index: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = field(default_factory=dict, repr=False)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """Where the value at ``path`` starts (or its key, with ``key=True``).

        A path that goes past the document (a missing key) resolves to the
        deepest node that exists, which is where the user has to add it.
        """
        node = self.root
        key_node = None
        for step in path:
            child = self._child(node, step)
            if child is None:
                break
            key_node, node = child
        target = key_node if key and key_node is not None else node
        if target is None:
            return Location(self.name, 1, 1)
        return _location(self.name, target)

    def text(self, path: Path) -> str | None:
        """The text as written of the scalar at ``path``, or None if there is none."""
        node = self.root
        for step in path:
            child = self._child(node, step)
            if child is None:
                return None
            node = child[1]
        return node.value if isinstance(node, yaml.ScalarNode) else None

    def _child(self, node: yaml.Node | None, step: Hashable) -> tuple[yaml.Node, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            index = self._key_index.get(id(node))
            if index is None:
                index = {}
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode):
                        index.setdefault(k.value, (k, v))
                self._key_index[id(node)] = index
            return index.get(step)
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            return node, node.value[step]
        return None


# Aliases let a short file stand for an enormous document (a "billion laughs"):
# the data is built once per anchor, but anything that walks it as a tree (the
# schema check) would walk every repetition. A document may stand for this many
# values, or twenty times the values it spells out, whichever is more.
MAX_EXPANDED = 2_000_000
EXPANSION_FACTOR = 20


def load(text: str, name: str, *, max_expanded: int = MAX_EXPANDED) -> Source:
    """Parse ``text`` (named ``name`` in messages) into a ``Source``.

    Syntax errors come back as problems on an empty document, like every other
    problem with the file, so the caller reports them the same way.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        return Source(name, None, None, [Problem(where, f"YAML syntax error: {what}")])
    except yaml.YAMLError as exc:
        return Source(name, None, None, [Problem(Location(name, 1, 1), f"YAML error: {exc}")])
    finally:
        loader.dispose()
    builder = _Builder(name)
    data = builder.build(root) if root is not None else None
    if root is not None:
        bomb = builder.alias_bomb(root, max(max_expanded, EXPANSION_FACTOR * len(builder.sizes)))
        if bomb is not None:
            return Source(name, None, None, [bomb])
    return Source(name, data, root, builder.problems)


def _location(name: str, node: yaml.Node) -> Location:
    mark = node.start_mark
    return Location(name, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, collecting problems."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[Problem] = []
        self._done: dict[int, Any] = {}  # aliases: build each shared node once
        self.sizes: dict[int, int] = {}  # values a node stands for, its aliased parts counted each time
        self._uses: dict[int, tuple[yaml.Node, int]] = {}

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            self.sizes[id(node)] = 1
            return self._scalar(node)
        done = self._done.get(id(node))
        if done is not None:
            known, uses = self._uses.get(id(node), (node, 0))
            self._uses[id(node)] = (known, uses + 1)
            return done
        value: Any
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP)
            value = self._mapping(node)
            children = [part for pair in node.value for part in pair]
        else:
            self._check_tag(node, _SEQ)
            value = [self.build(item) for item in node.value]
            children = node.value
        self._done[id(node)] = value
        self.sizes[id(node)] = 1 + sum(self.sizes.get(id(child), 1) for child in children)
        return value

    def alias_bomb(self, root: yaml.Node, limit: int) -> Problem | None:
        """A problem at the most repeated anchor when aliases make the document too large, else None."""
        total = self.sizes.get(id(root), 1)
        if total <= limit or not self._uses:
            return None
        node, uses = max(self._uses.values(), key=lambda item: self.sizes.get(id(item[0]), 1) * item[1])
        return Problem(
            _location(self.name, node),
            f"aliases repeat this anchor {uses} times and make the file stand for {total:,} values "
            f"(at most {limit:,} are read)",
            "write the shared settings once, in a profile, instead of repeating an anchor inside anchors",
        )

    def _mapping(self, node: yaml.MappingNode) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, "a key must be a plain name, not a list or a mapping")
                continue
            # Keys in fleet.yaml are always names (labels, VINs, profiles,
            # headers), so they are read as written: `on:` is "on", not True.
            key = key_node.value
            if key == "<<" and key_node.tag == _PLAIN:
                self._problem(
                    key_node,
                    "merge keys (<<) are not supported",
                    "share settings between vehicles with a profile instead",
                )
                continue
            if key in first_seen:
                first = _location(self.name, first_seen[key])
                self._problem(
                    key_node,
                    f"duplicate key {key!r} (first at line {first.line})",
                    "each key may appear once in a mapping; merge the two entries into one",
                )
                continue
            first_seen[key] = key_node
            result[key] = self.build(value_node)
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        text = node.value
        if tag == _PLAIN:
            return plain_scalar(text)
        if tag == _QUOTED:
            return text
        typed = plain_scalar(text)
        wanted = {
            "tag:yaml.org,2002:int": int,
            "tag:yaml.org,2002:float": float,
            "tag:yaml.org,2002:bool": bool,
            "tag:yaml.org,2002:null": type(None),
        }.get(tag)
        if wanted is not None and type(typed) is wanted:
            return typed
        self._problem(node, f"unsupported or mismatched tag {tag} on {text!r}", "remove the tag")
        return text

    def _check_tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            self._problem(node, f"unsupported tag {node.tag}", "remove the tag")

    def _problem(self, node: yaml.Node, message: str, hint: str = "") -> None:
        self.problems.append(Problem(_location(self.name, node), message, hint))
