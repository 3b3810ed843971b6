"""The 71 self-service items as data: frozen records loaded from catalog.yaml and validated once.

Adding an item is adding a YAML entry; nothing here names an item. The records are pydantic
dataclasses whose schema is the YAML's: a key they do not declare is refused (``extra="forbid"``).
The loader refuses a catalog it cannot trust (duplicate ids, unknown kinds, bad patterns,
missing names or operations) with a CatalogError that names the item, the field and the bad
value, because a half-valid catalog would only fail later in front of a resident. The
document's top level is one more record, so a new block (the home screen's tiles) is one more
field.

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
from pathlib import Path
from typing import Annotated, Any, Iterable, Mapping

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

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


# --- the schema's building blocks -------------------------------------------------------------
_RECORD = ConfigDict(extra="forbid")  # a key the schema does not declare is a typo, refused


class _Invalid(ValueError):
    """A rule of the catalog broken at ``key`` of the record being checked."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


def _text(value: Any) -> str:
    if value is None or value == "":
        raise ValueError("missing")
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    return value.strip()


def _optional_text(value: Any) -> str:
    return "" if value is None or value == "" else _text(value)


def _lines(value: Any) -> tuple[str, ...]:
    value = [value] if isinstance(value, str) else (value or [])
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of text lines")
    return tuple(v.strip() for v in value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _one_of(allowed: tuple[str, ...], what: str) -> BeforeValidator:
    def check(value: Any) -> str:
        text = _text(value)
        if text not in allowed:
            raise ValueError(f"unknown {what} {text!r} (one of {', '.join(allowed)})")
        return text
    return BeforeValidator(check)


def _named(pattern: re.Pattern[str], problem: str, key: str | None = None) -> BeforeValidator:
    def check(value: Any) -> str:
        text = _text(value)
        if not pattern.match(text):
            bad = f"{problem} {text!r}"
            raise _Invalid(key, bad) if key else ValueError(bad)
        return text
    return BeforeValidator(check)


def _item_id(value: Any) -> str:
    if not isinstance(value, str) or not _ITEM_ID_RE.match(value):
        raise ValueError(f"bad or missing item id {value!r}")
    return value


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)  # YAML reads 11 or 2026-01-01 as numbers and dates


def _pattern(value: Any) -> str | None:
    if value is not None:
        try:
            re.compile(str(value))
        except re.error as exc:
            raise ValueError(f"bad regular expression: {exc}") from None
    return _as_text(value)


def _date_bound(value: Any) -> str | None:
    if value is not None:
        try:
            resolve_date(str(value), dt.date(2000, 1, 31))
        except ValueError:
            raise ValueError(f"bad date bound {value!r}") from None
    return _as_text(value)


def _length(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or value < 0):
        raise ValueError("must be a non-negative whole number")
    return value


def _number(value: Any) -> float | None:
    if value is not None and not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return value


def _fee(value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise ValueError("must be a non-negative number or null (backend decides)")
    return None if value is None else float(value)


def _outputs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value or any(o not in OUTPUTS for o in value):
        raise ValueError(f"must be a non-empty list drawn from {', '.join(OUTPUTS)}")
    if len(set(value)) != len(value):
        raise ValueError("duplicate output")
    return tuple(value)


def _minutes(value: Any) -> int:
    if not isinstance(value, int) or not 1 <= value <= 60:
        raise ValueError("must be a whole number of minutes, 1-60")
    return value


def _mappings(value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or not all(isinstance(f, (dict, FieldSpec)) for f in value):
        raise ValueError("each field must be a mapping")
    return value


Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[str, BeforeValidator(_optional_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Lines = Annotated[tuple[str, ...], BeforeValidator(_lines)]


# --- the records ------------------------------------------------------------------------------
@dataclass(frozen=True, config=_RECORD)
class Choice:
    """One option of a choice field."""

    value: Annotated[str, BeforeValidator(str)]
    label_zh: Text
    label_en: Text

    @model_validator(mode="before")
    @classmethod
    def _a_mapping_with_a_value(cls, data: Any) -> Any:
        if not isinstance(data, (dict, ArgsKwargs)) or (isinstance(data, dict) and "value" not in data):
            raise ValueError("each choice needs value, label_zh, label_en")
        return data


@dataclass(frozen=True, config=_RECORD)
class FieldSpec:
    """One form field of an item: its labels, type and validation rule."""

    name: Annotated[str, _named(_FIELD_NAME_RE, "bad field name", "fields.name")]
    label_zh: Text
    label_en: Text
    type: Annotated[str, _one_of(FIELD_TYPES, "type")]
    required: Flag = True
    pattern: Annotated[str | None, BeforeValidator(_pattern)] = None
    choices: tuple[Choice, ...] = ()
    min_len: Annotated[int | None, BeforeValidator(_length)] = None
    max_len: Annotated[int | None, BeforeValidator(_length)] = None
    source: Annotated[str | None, BeforeValidator(_as_text)] = None  # lookup source on the backend (type lookup)
    hint_zh: OptionalText = ""
    hint_en: OptionalText = ""
    min_date: Annotated[str | None, BeforeValidator(_date_bound)] = None  # 'YYYY-MM-DD' | 'today' | 'today-30d' ...
    max_date: Annotated[str | None, BeforeValidator(_date_bound)] = None
    min_value: Annotated[float | None, BeforeValidator(_number)] = None
    max_value: Annotated[float | None, BeforeValidator(_number)] = None
    upper: Flag = False  # codes residents may type in lower case (frame numbers, VINs, case numbers)

    @model_validator(mode="after")
    def _consistent(self) -> "FieldSpec":
        if self.type == "choice" and not self.choices:
            raise _Invalid("choices", "a choice field needs choices")
        if len(set(self.choice_values())) != len(self.choices):
            raise _Invalid("choices", "duplicate choice value")
        if self.type == "lookup" and not self.source:
            raise _Invalid("source", "a lookup field needs its backend source")
        if self.source is not None and not _OPERATION_RE.match(self.source):
            raise _Invalid("source", f"bad lookup source {self.source!r}")
        return self

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


@dataclass(frozen=True, config=_RECORD)
class Category:
    """One of the five categories (户政, 治安与社区, 交管, 出入境, 综合)."""

    code: str
    name_zh: Text
    name_en: Text

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, (dict, ArgsKwargs)):
            raise ValueError("must be a mapping with name_zh, name_en")
        return data


@dataclass(frozen=True, config=_RECORD)
class CatalogItem:
    """One self-service item: everything the generic screens and workflow need to serve it."""

    id: Annotated[str, BeforeValidator(_item_id)]
    category: Text
    name_zh: Text
    name_en: Text
    kind: Annotated[str, _one_of(KINDS, "kind")]
    identity: Annotated[str, _one_of(IDENTITIES, "identity")]
    outputs: Annotated[tuple[str, ...], BeforeValidator(_outputs)]
    operation: Annotated[str, _named(_OPERATION_RE, "bad operation name")]
    needs_backend: Flag  # defaults to "not a guide" when the YAML leaves it out
    category_zh: str = ""  # from the catalog's categories
    category_en: str = ""
    fields: Annotated[tuple[FieldSpec, ...], BeforeValidator(_mappings)] = ()
    fee_cny: Annotated[float | None, BeforeValidator(_fee)] = 0.0  # None: the backend decides (fines, fees)
    guide_zh: OptionalText = ""
    guide_en: OptionalText = ""
    materials_zh: Lines = ()
    materials_en: Lines = ()
    expected_minutes: Annotated[int, BeforeValidator(_minutes)] = 3
    fee_count_field: str | None = None  # the fee is per unit of this field (a fee per endorsement)
    amount_source: str | None = None  # fee None: the lookup field whose option carries amount_fen

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_the_catalog(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill what the YAML leaves to the rest of the document: the category's names."""
        if not isinstance(data, dict) or info.context is None:
            return data
        for key in ("category_zh", "category_en"):
            if key in data:
                raise _Invalid(key, "unknown key (typo?)")  # the category's, not the item's
        data = {"id": None, "needs_backend": data.get("kind") != "guide", **data}
        category = info.context["categories"].get(data.get("category"))
        if category is not None:
            data.update(category_zh=category.name_zh, category_en=category.name_en)
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "CatalogItem":
        if info.context is not None:
            if self.category not in info.context["categories"]:
                raise _Invalid("category", f"unknown category {self.category!r}")
            if self.id[0] != self.category:
                raise _Invalid("category", f"id {self.id} does not belong to category {self.category}")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise _Invalid("fields", "duplicate field name")
        if self.fee_count_field is not None and self.fee_count_field not in names:
            raise _Invalid("fee_count_field", f"names no field of the item: {self.fee_count_field!r}")
        if self.amount_source is not None and (self.amount_source not in names or
                                               self.field(self.amount_source).type != "lookup"):
            raise _Invalid("amount_source", f"must name a lookup field of the item: {self.amount_source!r}")
        if self.kind == "payment" and self.fee_cny is None and self.amount_source is None:
            raise _Invalid("amount_source", "a payment whose fee the backend decides needs amount_source")
        if self.kind == "guide" and not (self.guide_zh and self.guide_en):
            raise _Invalid("guide_zh", "a guide needs its content in guide_zh and guide_en")
        return self

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
def _categories(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        raise ValueError("missing or not a mapping")
    return {str(code): {**c, "code": str(code)} if isinstance(c, dict) else c for code, c in value.items()}


def _items(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise ValueError("missing or empty")
    return value


@dataclass(frozen=True, config=_RECORD)
class _CatalogFile:
    """The document's top level; its items are checked against it afterwards."""

    categories: Annotated[dict[str, Category], BeforeValidator(_categories)] = Field(None, validate_default=True)
    items: Annotated[list[Any], BeforeValidator(_items)] = Field(None, validate_default=True)
    common_fields: Any = None  # YAML anchors only

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, (dict, ArgsKwargs)):
            raise _Invalid("document", "must be a mapping with categories and items")
        return data


_FILE = TypeAdapter(_CatalogFile)
_ITEMS = TypeAdapter(tuple[CatalogItem, ...])


def _fail(where: str, key: str, problem: str) -> CatalogError:
    return CatalogError(f"catalog: {where}: {key}: {problem}")


def _problem(error: Mapping[str, Any]) -> str:
    """A pydantic error in the catalog's words."""
    kind = error["type"]
    if kind in ("missing", "missing_argument"):
        return "missing"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return "unknown key (typo?)"
    if kind in ("dataclass_type", "dataclass_args_type", "model_type"):
        return "must be a mapping"
    cause = (error.get("ctx") or {}).get("error")
    return str(cause) if isinstance(cause, ValueError) else str(error["msg"])


def _last_key(loc: tuple[Any, ...], default: str) -> str:
    return next((str(part) for part in reversed(loc) if isinstance(part, str)), default)


def _where(loc: tuple[Any, ...], raw_items: list[Any]) -> tuple[str, str]:
    """The place a pydantic error location names, and the key, as the catalog's messages say them."""
    if not loc:
        return "top level", "document"
    head, rest = loc[0], loc[1:]
    if head == "categories" and rest:
        return f"category {rest[0]}", _last_key(rest[1:], "category")
    if head != "items" or not rest:
        return "top level", str(head)
    index, rest = rest[0], rest[1:]
    raw = raw_items[index] if isinstance(raw_items[index], dict) else {}
    item_id = raw.get("id")
    if rest[:1] == ("id",) or not isinstance(item_id, str) or not _ITEM_ID_RE.match(item_id):
        return f"items[{index}]", _last_key(rest, "item")
    where = f"item {item_id}"
    if rest[:1] == ("fields",) and len(rest) > 1:
        field = raw["fields"][rest[1]]
        name = field.get("name")
        if isinstance(name, str) and _FIELD_NAME_RE.match(name.strip()):
            where = f"{where} field {name.strip()}"
        return where, _last_key(rest[2:], "fields")
    return where, _last_key(rest, "item")


def _catalog_error(exc: ValidationError, raw_items: list[Any], prefix: tuple[Any, ...] = ()) -> CatalogError:
    """The first problem of ``exc`` as a CatalogError: the first item's, a bad id first, then an unknown key
    (before the "missing" it may have caused)."""
    def rank(error: Mapping[str, Any]) -> tuple[int, int]:
        loc = prefix + tuple(error["loc"])
        index = loc[1] if len(loc) > 1 and loc[0] == "items" else -1
        unknown_key = error["type"] in ("unexpected_keyword_argument", "extra_forbidden")
        return index, 0 if loc[2:3] == ("id",) else 1 if unknown_key else 2

    error = min(exc.errors(), key=rank)
    where, key = _where(prefix + tuple(error["loc"]), raw_items)
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _Invalid):
        key = cause.key
    return _fail(where, key, _problem(error))


def parse_catalog(raw: Any) -> Catalog:
    """Build a Catalog from the parsed YAML document. Raises CatalogError naming the item and key."""
    try:
        top = _FILE.validate_python(raw)
    except ValidationError as exc:
        raise _catalog_error(exc, []) from None
    try:
        items = _ITEMS.validate_python(top.items, context={"categories": top.categories})
    except ValidationError as exc:
        raise _catalog_error(exc, top.items, ("items",)) from None
    seen_ids: set[str] = set()
    seen_ops: dict[str, str] = {}
    for item in items:
        if item.id in seen_ids:
            raise _fail(f"item {item.id}", "id", "duplicate item id")
        if item.operation in seen_ops:
            raise _fail(f"item {item.id}", "operation",
                        f"operation {item.operation!r} already used by {seen_ops[item.operation]}")
        seen_ids.add(item.id)
        seen_ops[item.operation] = item.id
    return Catalog(items, tuple(top.categories.values()))


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
