"""The 71 self-service items as data: frozen records loaded from catalog.yaml and validated once.

Adding an item is adding a YAML entry; nothing here names an item. The loader refuses a
catalog it cannot trust (duplicate ids, unknown kinds, bad patterns, missing names or
operations) with a CatalogError that names the item and the key, because a half-valid
catalog would only fail later in front of a resident.

Form values are validated and normalised by :meth:`FieldSpec.validate`, by the field's type
(:mod:`kiosk.services.form_values`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from kiosk import localtime
from kiosk.errors import CatalogError, UnknownItemError
from kiosk.services.form_values import normalise, resolve_date

DEFAULT_PATH = Path(__file__).with_name("catalog.yaml")

KINDS = ("certificate", "application", "query", "payment", "appointment", "report", "guide", "verify")
IDENTITIES = ("none", "id_card", "id_card_and_face", "travel_document")
OUTPUTS = ("a4_document", "receipt", "slip", "screen")
FIELD_TYPES = ("text", "digits", "phone", "date", "plate", "choice", "number", "lookup", "id_number")
_OPERATION_RE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
_ITEM_ID_RE = re.compile(r"^[A-Z][0-9]{2}$")
_FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# libyaml's parser when present: five times faster than the pure-Python one on this file.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Choice:
    """One option of a choice field."""

    value: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class FieldSpec:
    """One form field of an item: its labels, type and validation rule."""

    name: str
    label_zh: str
    label_en: str
    type: str
    required: bool = True
    pattern: str | None = None
    choices: tuple[Choice, ...] = ()
    min_len: int | None = None
    max_len: int | None = None
    source: str | None = None  # lookup source on the backend (type lookup)
    hint_zh: str = ""
    hint_en: str = ""
    min_date: str | None = None  # 'YYYY-MM-DD' | 'today' | 'today-30d' ...
    max_date: str | None = None
    min_value: float | None = None
    max_value: float | None = None
    upper: bool = False  # codes residents may type in lower case (frame numbers, VINs, case numbers)

    def choice_values(self) -> tuple[str, ...]:
        """The allowed values of a choice field."""
        return tuple(c.value for c in self.choices)

    def choice_label(self, value: str, lang: str = "zh_CN") -> str:
        """The label of one choice value in ``lang``, or the value itself."""
        for c in self.choices:
            if c.value == value:
                return c.label_zh if lang.startswith("zh") else c.label_en
        return value

    def validate(self, value: Any, *, today: dt.date | None = None) -> str:
        """Normalise ``value`` to its canonical string, or raise FieldError ('' for an empty optional field)."""
        return normalise(self, value, today or localtime.today())


@dataclass(frozen=True)
class Category:
    """One of the five categories (户政, 治安与社区, 交管, 出入境, 综合)."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class CatalogItem:
    """One self-service item: everything the generic screens and workflow need to serve it."""

    id: str
    category: str
    category_zh: str
    category_en: str
    name_zh: str
    name_en: str
    kind: str
    identity: str
    fields: tuple[FieldSpec, ...]
    fee_cny: float | None  # None: the backend decides (fines, fees of an application)
    outputs: tuple[str, ...]
    operation: str
    guide_zh: str
    guide_en: str
    materials_zh: tuple[str, ...]
    materials_en: tuple[str, ...]
    expected_minutes: int
    needs_backend: bool
    fee_count_field: str | None = None  # the fee is per unit of this field (E01: per endorsement)
    amount_source: str | None = None  # fee None: the lookup field whose option carries amount_fen

    @property
    def needs_identity(self) -> bool:
        """True when the resident must present an identity document first."""
        return self.identity != "none"

    @property
    def needs_payment(self) -> bool:
        """True when the item takes a payment (a fixed fee above zero, or one the backend decides)."""
        return self.kind == "payment" or (self.fee_cny is not None and self.fee_cny > 0) or (
            self.fee_cny is None and self.amount_source is not None)

    @property
    def slip_on_request(self) -> bool:
        """True for a query with a slip: its results are shown, and the slip prints only when asked for."""
        return self.kind == "query" and "slip" in self.outputs

    def field(self, name: str) -> FieldSpec:
        """The field called ``name``. Raises KeyError."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def validate(self, values: Mapping[str, Any], *, today: dt.date | None = None) -> dict[str, str]:
        """Every field validated and normalised; raises FieldError for the first bad one."""
        return {spec.name: spec.validate(values.get(spec.name), today=today) for spec in self.fields}

    def amount_fen(self, values: Mapping[str, str],
                   options: Mapping[str, Iterable[Mapping[str, Any]]] | None = None) -> int | None:
        """The amount to pay in fen for validated ``values``: fixed fee (× count), or the chosen lookup option's amount."""
        if self.fee_cny is not None:
            count = int(values.get(self.fee_count_field, "1") or "1") if self.fee_count_field else 1
            return int(round(self.fee_cny * 100)) * count
        if self.amount_source:
            chosen = values.get(self.amount_source)
            for option in (options or {}).get(self.amount_source, ()):
                if option.get("value") == chosen and option.get("amount_fen") is not None:
                    return int(option["amount_fen"])
        return None

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly description printed by `kiosk catalog --json`."""
        return {
            "id": self.id, "category": self.category, "category_zh": self.category_zh,
            "category_en": self.category_en, "name_zh": self.name_zh, "name_en": self.name_en,
            "kind": self.kind, "needs_identity": self.needs_identity, "identity": self.identity,
            "outputs": list(self.outputs), "fee_cny": self.fee_cny, "operation": self.operation,
            "needs_backend": self.needs_backend, "expected_minutes": self.expected_minutes,
            "fields": [f.name for f in self.fields],
        }


class Catalog:
    """The loaded, validated item catalog."""

    def __init__(self, items: tuple[CatalogItem, ...], categories: tuple[Category, ...]) -> None:
        self.items = items
        self._categories = categories
        self._by_id = {item.id: item for item in items}

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Catalog":
        """Load and validate a catalog file (the packaged one by default); cached per path."""
        resolved = Path(path) if path is not None else DEFAULT_PATH
        return _load_cached(str(resolved.resolve()))

    def get(self, item_id: str) -> CatalogItem:
        """The item with this id. Raises UnknownItemError."""
        try:
            return self._by_id[item_id]
        except KeyError:
            raise UnknownItemError(f"unknown item id {item_id!r}") from None

    def categories(self) -> tuple[Category, ...]:
        """The categories in display order."""
        return self._categories

    def in_category(self, code: str) -> tuple[CatalogItem, ...]:
        """The items of one category, in catalog order."""
        return tuple(i for i in self.items if i.category == code)

    def search(self, text: str) -> tuple[CatalogItem, ...]:
        """Items whose id or zh/en name contains ``text`` (case-insensitive)."""
        needle = unicodedata.normalize("NFKC", text).strip().lower()
        if not needle:
            return self.items
        return tuple(i for i in self.items
                     if needle in i.id.lower() or needle in i.name_zh or needle in i.name_en.lower())

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> Catalog:
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog {path} is not valid YAML: {exc}") from None
    return parse_catalog(raw)


# --- validation at load ------------------------------------------------------------------
def _fail(where: str, key: str, problem: str) -> CatalogError:
    return CatalogError(f"catalog: {where}: {key}: {problem}")


def _str(d: Mapping[str, Any], key: str, where: str, *, required: bool = True, default: str = "") -> str:
    value = d.get(key, None)
    if value is None or value == "":
        if required:
            raise _fail(where, key, "missing")
        return default
    if not isinstance(value, str):
        raise _fail(where, key, f"must be text, got {type(value).__name__}")
    return value.strip()


def _lines(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = d.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, key, "must be a list of text lines")
    return tuple(v.strip() for v in value)


def _check_keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise _fail(where, unknown[0], "unknown key (typo?)")


_FIELD_KEYS = {"name", "label_zh", "label_en", "type", "required", "pattern", "choices", "min_len", "max_len",
               "source", "hint_zh", "hint_en", "min_date", "max_date", "min_value", "max_value", "upper"}
_ITEM_KEYS = {"id", "category", "name_zh", "name_en", "kind", "identity", "fields", "fee_cny", "outputs",
              "operation", "guide_zh", "guide_en", "materials_zh", "materials_en", "expected_minutes",
              "needs_backend", "fee_count_field", "amount_source"}


def _parse_field(raw: Any, where: str) -> FieldSpec:
    if not isinstance(raw, dict):
        raise _fail(where, "fields", "each field must be a mapping")
    name = _str(raw, "name", where)
    if not _FIELD_NAME_RE.match(name):
        raise _fail(where, "fields.name", f"bad field name {name!r}")
    fw = f"{where} field {name}"
    _check_keys(raw, _FIELD_KEYS, fw)
    ftype = _str(raw, "type", fw)
    if ftype not in FIELD_TYPES:
        raise _fail(fw, "type", f"unknown type {ftype!r} (one of {', '.join(FIELD_TYPES)})")
    pattern = raw.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise _fail(fw, "pattern", f"bad regular expression: {exc}") from None
    choices: list[Choice] = []
    for c in raw.get("choices") or []:
        if not isinstance(c, dict) or "value" not in c:
            raise _fail(fw, "choices", "each choice needs value, label_zh, label_en")
        choices.append(Choice(str(c["value"]), _str(c, "label_zh", fw), _str(c, "label_en", fw)))
    if ftype == "choice" and not choices:
        raise _fail(fw, "choices", "a choice field needs choices")
    if len({c.value for c in choices}) != len(choices):
        raise _fail(fw, "choices", "duplicate choice value")
    source = raw.get("source")
    if ftype == "lookup" and not source:
        raise _fail(fw, "source", "a lookup field needs its backend source")
    if source is not None and not _OPERATION_RE.match(str(source)):
        raise _fail(fw, "source", f"bad lookup source {source!r}")
    for key in ("min_date", "max_date"):
        if raw.get(key) is not None:
            try:
                resolve_date(str(raw[key]), dt.date(2000, 1, 31))
            except ValueError:
                raise _fail(fw, key, f"bad date bound {raw[key]!r}") from None
    for key in ("min_len", "max_len"):
        if raw.get(key) is not None and (not isinstance(raw[key], int) or raw[key] < 0):
            raise _fail(fw, key, "must be a non-negative whole number")
    for key in ("min_value", "max_value"):
        if raw.get(key) is not None and not isinstance(raw[key], (int, float)):
            raise _fail(fw, key, "must be a number")
    required, upper = raw.get("required", True), raw.get("upper", False)
    for key, flag in (("required", required), ("upper", upper)):
        if not isinstance(flag, bool):
            raise _fail(fw, key, "must be true or false")
    return FieldSpec(
        name=name, label_zh=_str(raw, "label_zh", fw), label_en=_str(raw, "label_en", fw), type=ftype,
        required=required, pattern=str(pattern) if pattern is not None else None, choices=tuple(choices),
        min_len=raw.get("min_len"), max_len=raw.get("max_len"), source=str(source) if source else None,
        hint_zh=_str(raw, "hint_zh", fw, required=False), hint_en=_str(raw, "hint_en", fw, required=False),
        min_date=str(raw["min_date"]) if raw.get("min_date") is not None else None,
        max_date=str(raw["max_date"]) if raw.get("max_date") is not None else None,
        min_value=raw.get("min_value"), max_value=raw.get("max_value"), upper=upper,
    )


def _parse_item(raw: Any, index: int, categories: Mapping[str, Category]) -> CatalogItem:
    if not isinstance(raw, dict):
        raise _fail(f"items[{index}]", "item", "must be a mapping")
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not _ITEM_ID_RE.match(item_id):
        raise _fail(f"items[{index}]", "id", f"bad or missing item id {item_id!r}")
    where = f"item {item_id}"
    _check_keys(raw, _ITEM_KEYS, where)
    category = _str(raw, "category", where)
    if category not in categories:
        raise _fail(where, "category", f"unknown category {category!r}")
    if item_id[0] != category:
        raise _fail(where, "category", f"id {item_id} does not belong to category {category}")
    kind = _str(raw, "kind", where)
    if kind not in KINDS:
        raise _fail(where, "kind", f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    identity = _str(raw, "identity", where)
    if identity not in IDENTITIES:
        raise _fail(where, "identity", f"unknown identity {identity!r} (one of {', '.join(IDENTITIES)})")
    outputs = raw.get("outputs")
    if not isinstance(outputs, list) or not outputs or any(o not in OUTPUTS for o in outputs):
        raise _fail(where, "outputs", f"must be a non-empty list drawn from {', '.join(OUTPUTS)}")
    if len(set(outputs)) != len(outputs):
        raise _fail(where, "outputs", "duplicate output")
    operation = _str(raw, "operation", where)
    if not _OPERATION_RE.match(operation):
        raise _fail(where, "operation", f"bad operation name {operation!r}")
    fee = raw.get("fee_cny", 0)
    if fee is not None and (isinstance(fee, bool) or not isinstance(fee, (int, float)) or fee < 0):
        raise _fail(where, "fee_cny", "must be a non-negative number or null (backend decides)")
    fields = tuple(_parse_field(f, where) for f in (raw.get("fields") or []))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise _fail(where, "fields", "duplicate field name")
    minutes = raw.get("expected_minutes", 3)
    if not isinstance(minutes, int) or not 1 <= minutes <= 60:
        raise _fail(where, "expected_minutes", "must be a whole number of minutes, 1-60")
    needs_backend = raw.get("needs_backend", kind != "guide")
    if not isinstance(needs_backend, bool):
        raise _fail(where, "needs_backend", "must be true or false")
    fee_count_field = raw.get("fee_count_field")
    if fee_count_field is not None and fee_count_field not in names:
        raise _fail(where, "fee_count_field", f"names no field of the item: {fee_count_field!r}")
    amount_source = raw.get("amount_source")
    if amount_source is not None and (amount_source not in names or
                                      next(f for f in fields if f.name == amount_source).type != "lookup"):
        raise _fail(where, "amount_source", f"must name a lookup field of the item: {amount_source!r}")
    if kind == "payment" and fee is None and amount_source is None:
        raise _fail(where, "amount_source", "a payment whose fee the backend decides needs amount_source")
    if kind == "guide" and not (_str(raw, "guide_zh", where, required=False) and
                                _str(raw, "guide_en", where, required=False)):
        raise _fail(where, "guide_zh", "a guide needs its content in guide_zh and guide_en")
    cat = categories[category]
    return CatalogItem(
        id=item_id, category=category, category_zh=cat.name_zh, category_en=cat.name_en,
        name_zh=_str(raw, "name_zh", where), name_en=_str(raw, "name_en", where), kind=kind, identity=identity,
        fields=fields, fee_cny=float(fee) if fee is not None else None, outputs=tuple(outputs),
        operation=operation, guide_zh=_str(raw, "guide_zh", where, required=False),
        guide_en=_str(raw, "guide_en", where, required=False),
        materials_zh=_lines(raw, "materials_zh", where), materials_en=_lines(raw, "materials_en", where),
        expected_minutes=minutes, needs_backend=needs_backend, fee_count_field=fee_count_field,
        amount_source=amount_source,
    )


def parse_catalog(raw: Any) -> Catalog:
    """Build a Catalog from the parsed YAML document. Raises CatalogError naming the item and key."""
    if not isinstance(raw, dict):
        raise _fail("top level", "document", "must be a mapping with categories and items")
    _check_keys(raw, {"categories", "items", "common_fields"}, "top level")  # common_fields: YAML anchors only
    cats_raw = raw.get("categories")
    if not isinstance(cats_raw, dict) or not cats_raw:
        raise _fail("top level", "categories", "missing or not a mapping")
    categories: dict[str, Category] = {}
    for code, c in cats_raw.items():
        if not isinstance(c, dict):
            raise _fail(f"category {code}", "category", "must be a mapping with name_zh, name_en")
        categories[str(code)] = Category(str(code), _str(c, "name_zh", f"category {code}"),
                                         _str(c, "name_en", f"category {code}"))
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        raise _fail("top level", "items", "missing or empty")
    items: list[CatalogItem] = []
    seen_ids: set[str] = set()
    seen_ops: dict[str, str] = {}
    for index, entry in enumerate(items_raw):
        item = _parse_item(entry, index, categories)
        if item.id in seen_ids:
            raise _fail(f"item {item.id}", "id", "duplicate item id")
        if item.operation in seen_ops:
            raise _fail(f"item {item.id}", "operation",
                        f"operation {item.operation!r} already used by {seen_ops[item.operation]}")
        seen_ids.add(item.id)
        seen_ops[item.operation] = item.id
        items.append(item)
    return Catalog(tuple(items), tuple(categories.values()))


# --- CLI ---------------------------------------------------------------------------------
def cli_catalog(args: argparse.Namespace) -> int:
    """`kiosk catalog [--json]`: list the items as a JSON array or a readable table."""
    catalog = Catalog.load()
    if getattr(args, "json", False):
        print(json.dumps([item.summary() for item in catalog.items], ensure_ascii=False, indent=1))
        return 0
    for cat in catalog.categories():
        members = catalog.in_category(cat.code)
        print(f"{cat.code}  {cat.name_zh} / {cat.name_en}  ({len(members)})")
        for item in members:
            fee = "backend" if item.fee_cny is None else (f"{item.fee_cny:g} CNY" if item.fee_cny else "free")
            print(f"  {item.id}  {_pad(item.name_zh, 28)} {item.kind:<12} {item.identity:<17} "
                  f"{fee:<9} {','.join(item.outputs):<22} {item.name_en}")
    print(f"{len(catalog)} items")
    return 0


def _pad(text: str, width: int) -> str:
    """Pad to a display width, counting CJK characters as two columns."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - used)
