"""The simulator's operation registry: the seam between the server and the 71 items' operations.

An operation module in ``backend_sim/operations/`` registers its handlers with
``@operation("name")`` (for ``POST /operations/{name}``) and ``@lookup("source")`` (for
``POST /lookups/{source}``). The server runs an operation only for the item the catalog
says it serves, and only with form values that pass that item's field rules. A module may also define ``SCHEMA`` (SQL run at start-up) and
``seed(conn)`` (inserts its demo rows); both run once per fresh database, after the core
tables of :mod:`kiosk.backend_sim.seed` exist.

A handler receives an :class:`OpContext` and returns a dict:

- operation: ``{"display": [{label_zh, label_en, value}], "data": {...}, "reference": str?,
  "document": Document?}``; missing keys default to empty, and when ``reference`` is
  missing the server makes one with ``new_reference("R")``. ``document`` is what
  ``ctx.issue_document`` returned.
- lookup: a list of options ``[{value, label_zh, label_en, amount_fen?, detail?}]``.

A business refusal is ``ctx.refuse(rule, message_zh, message_en, where_zh, where_en)``; it
raises, rolls back whatever the handler wrote, and becomes HTTP 422 ``refused``.
"""
from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any, Callable, NoReturn

OperationHandler = Callable[["OpContext"], dict[str, Any]]
LookupHandler = Callable[["OpContext"], list[dict[str, Any]]]

OPERATIONS: dict[str, OperationHandler] = {}
LOOKUPS: dict[str, LookupHandler] = {}
# Items served by operations the shipped catalog does not name (tests; an item under
# development), by item id. The shipped catalog always wins over these.
EXTRA_ITEMS: dict[str, Any] = {}

OPERATIONS_PACKAGE = "kiosk.backend_sim.operations"


class Refusal(Exception):
    """Raised by ``OpContext.refuse``: a business rule says no (HTTP 422 ``refused``)."""

    def __init__(self, rule: str, message_zh: str, message_en: str,
                 where_zh: str = "", where_en: str = "") -> None:
        super().__init__(rule)
        self.rule = rule
        self.message_zh = message_zh
        self.message_en = message_en
        self.where_zh = where_zh
        self.where_en = where_en


def operation(name: str, *, items: tuple[Any, ...] = ()) -> Callable[[OperationHandler], OperationHandler]:
    """Register ``handler(ctx) -> dict`` as the operation ``name``.

    The catalog says which item an operation serves (``CatalogItem.operation``); an operation
    no catalog item names declares its ``items`` (CatalogItems naming it) here instead.
    """
    for item in items:
        if item.operation != name:
            raise ValueError(f"item {item.id} names operation {item.operation!r}, not {name!r}")

    def register(handler: OperationHandler) -> OperationHandler:
        if name in OPERATIONS and OPERATIONS[name] is not handler:
            raise ValueError(f"operation {name!r} registered twice")
        OPERATIONS[name] = handler
        EXTRA_ITEMS.update({item.id: item for item in items})
        return handler
    return register


def lookup(source: str) -> Callable[[LookupHandler], LookupHandler]:
    """Register ``handler(ctx) -> list[option]`` as the lookup ``source``."""
    def register(handler: LookupHandler) -> LookupHandler:
        if source in LOOKUPS and LOOKUPS[source] is not handler:
            raise ValueError(f"lookup {source!r} registered twice")
        LOOKUPS[source] = handler
        return handler
    return register


@dataclass
class OpContext:
    """What an operation or lookup handler sees of one request.

    ``db`` is the simulator's SQLite connection (rows come back as ``sqlite3.Row``); the
    handler runs inside a transaction that commits only if it returns normally.
    ``resident`` is the caller's row of the ``residents`` table as a dict (None when the
    request names no ID number or an unknown one).
    """

    db: sqlite3.Connection
    item_id: str
    fields: dict[str, Any]
    resident: dict[str, Any] | None
    id_number: str | None
    now: datetime
    payment_order_id: str | None = None
    operation: str = ""
    # Supplied by the server: issue_document(doc_type, title_zh, title_en, content, ctx) -> Document.
    _issuer: Callable[..., dict[str, Any]] | None = field(default=None, repr=False)
    issued: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def refuse(self, rule: str, message_zh: str, message_en: str,
               where_zh: str = "", where_en: str = "") -> NoReturn:
        """Refuse by business rule ``rule`` (HTTP 422); the messages are shown to the resident."""
        raise Refusal(rule, message_zh, message_en, where_zh, where_en)

    def issue_document(self, doc_type: str, title_zh: str, title_en: str,
                       content: dict[str, Any]) -> dict[str, Any]:
        """Store a signed document for this resident and return it (the API's Document shape)."""
        if self._issuer is None:
            raise RuntimeError("this context cannot issue documents")
        doc = self._issuer(self, doc_type, title_zh, title_en, content)
        self.issued.append(doc)
        return doc

    def new_reference(self, prefix: str) -> str:
        """A new unique reference such as ``H0120261129000042`` (prefix, date, sequence)."""
        row = self.db.execute(
            "INSERT INTO sequences(prefix, value) VALUES (?, 1) "
            "ON CONFLICT(prefix) DO UPDATE SET value = value + 1 RETURNING value", (prefix,)).fetchone()
        return f"{prefix}{self.now:%Y%m%d}{row[0]:06d}"

    def row(self, sql: str, *params: Any) -> dict[str, Any] | None:
        """The first row of a query as a dict, or None."""
        cur = self.db.execute(sql, params)
        r = cur.fetchone()
        return dict(r) if r is not None else None

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Every row of a query as dicts."""
        return [dict(r) for r in self.db.execute(sql, params).fetchall()]


def discover() -> list[ModuleType]:
    """Import every module of the operations package (registering its handlers); return them sorted by name."""
    package = importlib.import_module(OPERATIONS_PACKAGE)
    modules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"{OPERATIONS_PACKAGE}.{info.name}"))
    return modules
