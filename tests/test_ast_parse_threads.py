"""ast.parse from many threads at once (CPython 3.11's AST conversion shares its recursion check between threads)."""
from __future__ import annotations

import ast
import sys
from concurrent.futures import ThreadPoolExecutor

import kiosk  # noqa: F401  (installs the lock on 3.11)

SOURCE = "\n".join(f"def f{i}(a, b):\n    return [x * (a + b) for x in range({i})] + [{{'k': (a, b)}}]"
                   for i in range(200))


def test_many_threads_parse_at_once_without_a_system_error() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        trees = list(pool.map(lambda _n: ast.parse(SOURCE), range(64)))
    assert all(len(tree.body) == 200 for tree in trees)


def test_the_lock_is_there_where_cpython_needs_it() -> None:
    assert getattr(ast.parse, "_kiosk_locked", False) is (sys.version_info < (3, 12))
    assert ast.parse("x = 1").body[0].targets[0].id == "x"
