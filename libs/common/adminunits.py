"""The admin-unit tree (city > district > commune, or any other depth) as data.

Loaded from the maintained ``vietnam-provinces`` package (0.4.x: the divisions in force
before the 2025 merger, i.e. Ho Chi Minh City's 22 districts and 312 communes of 2021),
or from a JSON file of nested ``{"code", "name", "division_type", "children"}`` nodes,
so that a new map of the country is a data change, not a code change. A node's path is
the codes from the root joined by ``/``: ``79/760/26734``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

CHILD_KEYS = ("children", "districts", "wards")


@dataclass
class AdminUnit:
    code: str
    name: str
    division_type: str
    path: str
    depth: int
    parent: AdminUnit | None = field(default=None, repr=False)
    children: list[AdminUnit] = field(default_factory=list, repr=False)


class AdminTree:
    def __init__(self, root: AdminUnit) -> None:
        self.root = root
        self._by_path: dict[str, AdminUnit] = {}
        self._by_code: dict[str, AdminUnit] = {}
        for unit in self.walk():
            self._by_path[unit.path] = unit
            self._by_code.setdefault(unit.code, unit)

    @classmethod
    def from_nested(cls, node: dict) -> AdminTree:
        def build(raw: dict, parent: AdminUnit | None) -> AdminUnit:
            code = str(raw["code"])
            unit = AdminUnit(
                code=code, name=raw["name"], division_type=raw.get("division_type", ""),
                path=f"{parent.path}/{code}" if parent else code,
                depth=parent.depth + 1 if parent else 0, parent=parent,
            )
            for key in CHILD_KEYS:
                for child in raw.get(key) or ():
                    unit.children.append(build(child, unit))
            unit.children.sort(key=lambda u: u.name)
            return unit

        return cls(build(node, None))

    @classmethod
    def from_file(cls, path: Path, root_code: str | None = None) -> AdminTree:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_nested(_pick_root(data, root_code))

    @classmethod
    def from_package(cls, root_code: str = "79") -> AdminTree:
        source = resources.files("vietnam_provinces") / "data" / "nested-divisions.json"
        data = json.loads(source.read_text(encoding="utf-8"))
        return cls.from_nested(_pick_root(data, root_code))

    def walk(self, start: AdminUnit | None = None) -> Iterator[AdminUnit]:
        stack = [start or self.root]
        while stack:
            unit = stack.pop()
            yield unit
            stack.extend(reversed(unit.children))

    def get(self, path: str) -> AdminUnit | None:
        return self._by_path.get(path)

    def by_code(self, code: str | int) -> AdminUnit | None:
        return self._by_code.get(str(code))

    def within(self, path: str) -> list[AdminUnit]:
        """The node at ``path`` and everything below it."""
        unit = self.get(path)
        return list(self.walk(unit)) if unit else []

    def ancestors(self, path: str) -> list[AdminUnit]:
        unit = self.get(path)
        chain = []
        while unit is not None:
            chain.append(unit)
            unit = unit.parent
        return list(reversed(chain))

    def level(self, depth: int) -> list[AdminUnit]:
        return [u for u in self.walk() if u.depth == depth]

    def label(self, path: str) -> str:
        """``Phường Tân Định, Quận 1`` (the node and its ancestors below the root)."""
        return ", ".join(u.name for u in reversed(self.ancestors(path)[1:])) or (
            self.root.name if path == self.root.path else path)


def _pick_root(data, root_code: str | None) -> dict:  # noqa: ANN001
    if isinstance(data, dict):
        return data
    if root_code is None:
        if len(data) != 1:
            raise ValueError("the file holds several trees: name the root code")
        return data[0]
    for node in data:
        if str(node["code"]) == str(root_code):
            return node
    raise ValueError(f"no admin unit with code {root_code!r} at the top of the file")


@lru_cache(maxsize=4)
def load_tree(file: str | None = None, root_code: str = "79") -> AdminTree:
    """The tree the settings name: a file if given, else the package's data."""
    if file:
        return AdminTree.from_file(Path(file), root_code)
    return AdminTree.from_package(root_code)
