"""Multi-document YAML from pull requests, with the line of every value, at a bounded cost.

Kubernetes manifests, compose files and Helm values are read here. The text has passed
``planner.spec.safeio`` (regular file, size cap) and its nesting check. Then libyaml's safe composer builds the
node graph, which takes time linear in the text. An alias may point to a node that is itself built
from aliases, so a 1 kB "billion laughs" file could expand to 10^9 values if the graph were copied out
naively. The expanded size is therefore computed on the graph first (once per distinct node) and a
document over ``MAX_VALUES`` values is refused before anything is copied; conversion counts as well. The number of
documents is capped at ``MAX_DOCUMENTS``.

Mappings become :class:`Map` (a ``dict`` that knows its line and the line of each key), sequences become
:class:`Seq` (a ``list`` with the line of each item). YAML merge keys (``<<: *anchor``) are applied the
way the YAML 1.1 merge type defines them: keys written in the mapping win over merged ones.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from planner.errors import SpecFileError
from planner.spec.safeio import check_nesting

MAX_DOCUMENTS = 1_000
MAX_VALUES = 100_000

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Map(dict):
    """A YAML mapping: ``line`` is where it starts, ``key_lines[key]`` where each key is written."""

    line: int = 1
    key_lines: dict
    block_keys: frozenset = frozenset()  # values written as | or > blocks

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def text_line(self, key: str) -> int:
        """The line where the value of ``key`` begins."""
        return self.line_of(key) + (1 if key in self.block_keys else 0)


class Seq(list):
    """A YAML sequence: ``line`` is where it starts, ``item_lines[i]`` where item ``i`` is written."""

    line: int = 1
    item_lines: list
    block_items: frozenset = frozenset()  # items written as | or > blocks: their text starts a line later

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line

    def text_line(self, index: int) -> int:
        """The line where item ``index``'s text begins."""
        return self.line_of(index) + (1 if index in self.block_items else 0)


class Document:
    def __init__(self, index: int, line: int, data: object):
        self.index = index
        self.line = line
        self.data = data


class _Converter:
    def __init__(self, path: str):
        self.path = path
        self.count = 0
        self.scalars = yaml.SafeLoader("")

    def _tick(self, node: yaml.Node) -> None:
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecFileError(self.path, f"YAML expands to more than {MAX_VALUES:,} values "
                                           "(aliases referring to aliases?)", node.start_mark.line + 1)

    def scalar(self, node: yaml.ScalarNode) -> object:
        tag = node.tag
        try:
            if tag == "tag:yaml.org,2002:str":
                return node.value
            if tag == "tag:yaml.org,2002:int":
                return self.scalars.construct_yaml_int(node)
            if tag == "tag:yaml.org,2002:float":
                return self.scalars.construct_yaml_float(node)
            if tag == "tag:yaml.org,2002:bool":
                return self.scalars.construct_yaml_bool(node)
            if tag == "tag:yaml.org,2002:null":
                return None
            return self.scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            return node.value  # e.g. a timestamp out of range: keep the text

    def check_size(self, root: yaml.Node) -> None:
        """Refuse a graph whose expansion has more than MAX_VALUES nodes, before expanding it: sizes are
        computed once per distinct node (aliases share nodes), so this costs the text's size, not the
        expansion's. A node that contains itself (``&a [*a]``) is refused too."""
        sizes: dict[int, int] = {}
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        visiting: set[int] = set()
        while stack:
            node, done = stack.pop()
            key = id(node)
            if done:
                visiting.discard(key)
                kids = self._children(node)
                total = 1 + sum(sizes[id(k)] for k in kids)
                sizes[key] = total
                if total > MAX_VALUES:
                    raise SpecFileError(self.path, f"YAML expands to more than {MAX_VALUES:,} values "
                                                   "(aliases referring to aliases?)", node.start_mark.line + 1)
                continue
            if key in sizes:
                continue
            if key in visiting:
                raise SpecFileError(self.path, "invalid YAML: an alias refers to the node that contains it",
                                    node.start_mark.line + 1)
            visiting.add(key)
            stack.append((node, True))
            stack += [(k, False) for k in self._children(node) if id(k) not in sizes]

    @staticmethod
    def _children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    def convert(self, node: yaml.Node, depth: int = 0) -> object:
        self._tick(node)
        if depth > 200:  # aliases can nest deeper than the text shows
            raise SpecFileError(self.path, "YAML nested too deeply", node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            seq = Seq()
            seq.line = node.start_mark.line + 1
            seq.item_lines = []
            blocks = set()
            for i, item in enumerate(node.value):
                seq.append(self.convert(item, depth + 1))
                seq.item_lines.append(item.start_mark.line + 1)
                if isinstance(item, yaml.ScalarNode) and item.style in ("|", ">"):
                    blocks.add(i)
            seq.block_items = frozenset(blocks)
            return seq
        return self.mapping(node, depth)

    def mapping(self, node: yaml.MappingNode, depth: int) -> Map:
        out = Map()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        merged: list[Map] = []
        blocks = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                value = self.convert(value_node, depth + 1)
                merged += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, Map)]
                continue
            key = self.scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, (str, int, float, bool)) or key is None:
                # a template placeholder such as {{HF_TOKEN}} used as a key: not a mapping any reader uses
                key = f"<non-scalar key at line {key_node.start_mark.line + 1}>"
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                raise SpecFileError(self.path, f"invalid YAML: duplicate key '{key}'", key_node.start_mark.line + 1,
                                    key_node.start_mark.column + 1)
            out[key] = self.convert(value_node, depth + 1)
            out.key_lines[key] = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">"):
                blocks.add(key)
        out.block_keys = frozenset(blocks)
        for m in merged:
            for k, v in m.items():
                if k not in out:
                    out[k] = v
                    out.key_lines[k] = m.line_of(k)
        return out


def load_documents(path: Path | str, text: str) -> list[Document]:
    """Every document of a YAML stream, converted with lines; one SpecFileError with a line on failure."""
    path = str(path)
    check_nesting(path, text)
    conv = _Converter(path)
    docs: list[Document] = []
    try:
        for node in yaml.compose_all(text, Loader=_SafeLoader):
            if len(docs) >= MAX_DOCUMENTS:
                raise SpecFileError(path, f"more than {MAX_DOCUMENTS:,} YAML documents", node.start_mark.line + 1
                                    if node is not None else None)
            if node is None:
                continue
            conv.check_size(node)
            docs.append(Document(len(docs), node.start_mark.line + 1, conv.convert(node)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecFileError(path, f"invalid YAML: {problem}", mark.line + 1 if mark else None,
                            mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise SpecFileError(path, f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else 'error'}") from None
    except RecursionError:
        raise SpecFileError(path, "invalid YAML: nested too deeply") from None
    return docs


def get(data: object, *keys: str | int, default: object = None) -> object:
    """``data[k1][k2]...`` when every step exists with the right container type, else ``default``."""
    for k in keys:
        if isinstance(k, int) and isinstance(data, list) and -len(data) <= k < len(data):
            data = data[k]
        elif isinstance(k, str) and isinstance(data, dict) and k in data:
            data = data[k]
        else:
            return default
    return data


def line_at(data: object, *keys: str | int) -> int | None:
    """The line where the last key of the path is written (the nearest container's line when missing)."""
    line = getattr(data, "line", None)
    for k in keys:
        if isinstance(data, Map) and isinstance(k, str):
            line = data.line_of(k)
            if k not in data:
                return line
            data = data[k]
        elif isinstance(data, Seq) and isinstance(k, int):
            line = data.line_of(k)
            if not 0 <= k < len(data):
                return line
            data = data[k]
        else:
            return line
    return line
