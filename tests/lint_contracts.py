"""Import rules that import-linter has no contract type for: no import cycles, anywhere.

import-linter's ``layers`` contract keeps academy -> grader -> labs one-way; inside a package, two
modules that import each other (even lazily, inside a function) are as tangled, and no built-in
contract forbids that without listing every module in order. ``acyclic`` does: it fails on every
group of modules that reach each other by imports, and names one circle of each with line numbers.
pyproject.toml registers it (``[tool.importlinter] contract_types``); tests/test_architecture.py
uses :func:`import_cycles` to check the same on grimp's graph directly.
"""

from __future__ import annotations

from collections.abc import Iterable

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def import_cycles(graph: grimp.ImportGraph, packages: Iterable[str]) -> list[list[str]]:
    """Every strongly connected group of two or more modules of ``packages`` (each module can
    reach every other by imports), sorted; empty when the imports form no circle."""
    roots = tuple(packages)
    prefixes = tuple(f"{root}." for root in roots)
    modules = sorted(m for m in graph.modules if m in roots or m.startswith(prefixes))
    inside = set(modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & inside) for m in modules}
    # Tarjan's algorithm, iterative: a package's import chains can be deeper than the stack.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(groups)


def one_circle(graph: grimp.ImportGraph, group: list[str]) -> list[tuple[str, str, list[int]]]:
    """One circle through ``group``'s first module: (importer, imported, line numbers) links."""
    first = group[0]
    inside = set(group)
    back = min(graph.find_modules_that_directly_import(first) & inside)
    route = graph.find_shortest_chain(importer=first, imported=back, as_packages=False)
    hops = [*(route or (first, back)), first]
    links = []
    for importer, imported in zip(hops, hops[1:], strict=False):
        details = graph.get_import_details(importer=importer, imported=imported)
        links.append((importer, imported, sorted(d["line_number"] for d in details)))
    return links


class AcyclicContract(Contract):
    """No module of ``packages`` imports, directly or through others, a module that imports it.

    Configuration options:

        - packages: the packages whose modules must not import each other in a circle.
    """

    type_name = "acyclic"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        packages = list(self.packages)
        groups = import_cycles(graph, packages)
        return ContractCheck(
            kept=not groups,
            metadata={"circles": [one_circle(graph, group) for group in groups]},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for links in check.metadata["circles"]:
            output.print(f"{links[0][0]} imports itself through a circle:")
            output.new_line()
            for importer, imported, lines in links:
                where = ", ".join(f"l.{n}" for n in lines)
                output.indent_cursor()
                output.print(f"- {importer} -> {imported} ({where})")
            output.new_line()
