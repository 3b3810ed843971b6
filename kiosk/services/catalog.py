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
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import marshal
import os
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Iterable, Mapping

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from kiosk import localtime
from kiosk.caches import cache_dir
from kiosk.durable import write_atomic
from kiosk.errors import CatalogError, UnknownItemError
from kiosk.services.catalog_schema import (IDENTITIES, OPERATION_RE, RECORD, CardTypes, ChoiceValue, DateBound, Fee,
                                           FieldName, FieldType, Flag, IconName, Identity, Invalid, ItemId, Kind, Length,
                                           Lines, LookupSource, Minutes, Number, OperationName, OptionalIconName,
                                           OptionalText, Outputs, Pattern, Text, catalog_error, fail, unreadable_card)
from kiosk.services.form_values import normalise

DEFAULT_PATH = Path(__file__).with_name("catalog.yaml")
MAX_HOME_ITEMS = 4  # tiles the home screen has room for

log = logging.getLogger(__name__)

# The catalog's parsed contents are kept between runs (marshal, in kiosk.caches.cache_dir), under a name made from the
# file's bytes: importing PyYAML and parsing this file took about 90 ms of every start-up (before the first frame),
# reading the copy takes about 2. This number changes when the copy's layout does.
COPY_FORMAT = 1
KEPT_COPIES = 8  # copies of other catalog files (a test's, a site's earlier version) kept, most recently used first


def _field_mappings(value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or not all(isinstance(f, (dict, FieldSpec)) for f in value):
        raise ValueError("each field must be a mapping")
    return value


# --- the records ------------------------------------------------------------------------------
@dataclass(frozen=True, config=RECORD)
class Choice:
    """One option of a choice field."""

    value: ChoiceValue
    label_zh: Text
    label_en: Text

    @model_validator(mode="before")
    @classmethod
    def _a_mapping_with_a_value(cls, data: Any) -> Any:
        if not isinstance(data, (dict, ArgsKwargs)) or (isinstance(data, dict) and "value" not in data):
            raise ValueError("each choice needs value, label_zh, label_en")
        return data


@dataclass(frozen=True, config=RECORD)
class FieldSpec:
    """One form field of an item: its labels, type and validation rule."""

    name: FieldName
    label_zh: Text
    label_en: Text
    type: FieldType
    required: Flag = True
    pattern: Pattern = None
    choices: tuple[Choice, ...] = ()
    min_len: Length = None
    max_len: Length = None
    source: LookupSource = None  # lookup source on the backend (type lookup)
    hint_zh: OptionalText = ""
    hint_en: OptionalText = ""
    min_date: DateBound = None  # 'YYYY-MM-DD' | 'today' | 'today-30d' ...
    max_date: DateBound = None
    min_value: Number = None
    max_value: Number = None
    upper: Flag = False  # codes residents may type in lower case (frame numbers, VINs, case numbers)

    @model_validator(mode="after")
    def _consistent(self) -> "FieldSpec":
        if self.type == "choice" and not self.choices:
            raise Invalid("choices", "a choice field needs choices")
        if len(set(self.choice_values())) != len(self.choices):
            raise Invalid("choices", "duplicate choice value")
        if self.type == "lookup" and not self.source:
            raise Invalid("source", "a lookup field needs its backend source")
        if self.source is not None and not OPERATION_RE.match(self.source):
            raise Invalid("source", f"bad lookup source {self.source!r}")
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


@dataclass(frozen=True, config=RECORD)
class Category:
    """One of the five categories (户政, 治安与社区, 交管, 出入境, 综合)."""

    code: str
    name_zh: Text
    name_en: Text
    icon: IconName  # its picture on the home screen, from the installed icon set

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, (dict, ArgsKwargs)):
            raise ValueError("must be a mapping with name_zh, name_en")
        return data


@dataclass(frozen=True, config=RECORD)
class IdentityRule:
    """What an identity requirement accepts unless an item says otherwise (the catalog's ``identities``)."""

    identity: str
    accepted_cards: CardTypes

    @model_validator(mode="after")
    def _readable(self) -> "IdentityRule":
        if self.identity not in IDENTITIES or self.identity == "none":
            raise Invalid("identity", f"no identity {self.identity!r} reads a card "
                                      f"(one of {', '.join(IDENTITIES[1:])})")
        if not self.accepted_cards:
            raise Invalid("accepted_cards", "missing")
        bad = unreadable_card(self.identity, self.accepted_cards)
        if bad:
            raise Invalid("accepted_cards", f"{bad!r} cannot be read for identity {self.identity}")
        return self


@dataclass(frozen=True, config=RECORD)
class RatingRule:
    """Makes an item the satisfaction rating: the field whose answer is counted, and the one naming the item rated."""

    choice_field: Text
    rated_item_field: OptionalText = ""


@dataclass(frozen=True, config=RECORD)
class CatalogItem:
    """One self-service item: everything the generic screens and workflow need to serve it."""

    id: ItemId
    category: Text
    name_zh: Text
    name_en: Text
    kind: Kind
    identity: Identity
    outputs: Outputs
    operation: OperationName
    needs_backend: Flag  # defaults to "not a guide" when the YAML leaves it out
    category_zh: str = ""  # from the catalog's categories
    category_en: str = ""
    fields: Annotated[tuple[FieldSpec, ...], BeforeValidator(_field_mappings)] = ()
    fee_cny: Fee = 0.0  # None: the backend decides (fines, fees)
    guide_zh: OptionalText = ""
    guide_en: OptionalText = ""
    materials_zh: Lines = ()
    materials_en: Lines = ()
    expected_minutes: Minutes = 3
    fee_count_field: str | None = None  # the fee is per unit of this field (a fee per endorsement)
    amount_source: str | None = None  # fee None: the lookup field whose option carries amount_fen
    # The card types that may use the item; left out of the YAML, its identity's (the catalog's identities).
    accepted_cards: CardTypes = ()
    accepts_expired_card: Flag = False  # renewing an expired card, or following that renewal
    rating: RatingRule | None = None  # this item is the satisfaction rating (counted in the statistics)
    icon: OptionalIconName = ""  # its picture as a home tile; left out, its category's

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_the_catalog(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill what the YAML leaves to the rest of the document: the category's names, the identity's cards."""
        if not isinstance(data, dict) or info.context is None:
            return data
        for key in ("category_zh", "category_en"):
            if key in data:
                raise Invalid(key, "unknown key (typo?)")  # the category's, not the item's
        data = {"id": None, "needs_backend": data.get("kind") != "guide", **data}
        category = info.context["categories"].get(data.get("category"))
        if category is not None:
            data.update(category_zh=category.name_zh, category_en=category.name_en)
        rule = info.context["identities"].get(data.get("identity"))
        if rule is not None and "accepted_cards" not in data:
            data["accepted_cards"] = rule.accepted_cards
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "CatalogItem":
        if info.context is not None:
            if self.category not in info.context["categories"]:
                raise Invalid("category", f"unknown category {self.category!r}")
            if self.id[0] != self.category:
                raise Invalid("category", f"id {self.id} does not belong to category {self.category}")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise Invalid("fields", "duplicate field name")
        if self.fee_count_field is not None and self.fee_count_field not in names:
            raise Invalid("fee_count_field", f"names no field of the item: {self.fee_count_field!r}")
        if self.amount_source is not None and (self.amount_source not in names or
                                               self.field(self.amount_source).type != "lookup"):
            raise Invalid("amount_source", f"must name a lookup field of the item: {self.amount_source!r}")
        if self.kind == "payment" and self.fee_cny is None and self.amount_source is None:
            raise Invalid("amount_source", "a payment whose fee the backend decides needs amount_source")
        if self.kind == "guide" and not (self.guide_zh and self.guide_en):
            raise Invalid("guide_zh", "a guide needs its content in guide_zh and guide_en")
        self._check_cards()
        if self.rating is not None:
            self._check_rating(self.rating)
        return self

    def _check_cards(self) -> None:
        if not self.needs_identity and self.accepted_cards:
            raise Invalid("accepted_cards", "an item without identity accepts no card")
        if self.needs_identity and not self.accepted_cards:
            raise Invalid("accepted_cards", f"missing (and identities gives none for {self.identity})")
        bad = unreadable_card(self.identity, self.accepted_cards)
        if bad:
            raise Invalid("accepted_cards", f"{bad!r} cannot be read for identity {self.identity}")

    def _check_rating(self, rating: RatingRule) -> None:
        names = {f.name: f for f in self.fields}
        if rating.choice_field not in names or names[rating.choice_field].type != "choice":
            raise Invalid("rating", f"choice_field must name a choice field of the item: {rating.choice_field!r}")
        if rating.rated_item_field and rating.rated_item_field not in names:
            raise Invalid("rating", f"rated_item_field names no field of the item: {rating.rated_item_field!r}")

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

    def __init__(self, items: tuple[CatalogItem, ...], categories: tuple[Category, ...],
                 home_items: tuple[str, ...] = ()) -> None:
        self.items = items
        self._categories = categories
        self._by_id = {item.id: item for item in items}
        self.home_item_ids = home_items

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

    def home_items(self, override: Iterable[str] | None = None) -> tuple[CatalogItem, ...]:
        """The items shown as large tiles on the home screen: ``override`` (config ``ui.home_items``) or the catalog's.

        Raises UnknownItemError for an id the catalog does not hold.
        """
        return tuple(self.get(item_id) for item_id in (self.home_item_ids if override is None else override))

    def icon(self, item: CatalogItem) -> str:
        """The icon name of an item's tile: its own, or its category's."""
        return item.icon or next(c.icon for c in self._categories if c.code == item.category)

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
        text = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc.strerror}") from None
    return parse_catalog(_contents(text, path))


def _contents(text: bytes, path: str) -> Any:
    """The catalog file's contents as plain values: from the copy kept for these very bytes, else parsed from its
    YAML (the copy then written for the next start).

    marshal, not pickle: the copy holds plain values only and cannot run code when read. A damaged copy is parsed
    again; a copy that cannot be written (a read-only cache folder) or cannot hold a value (a YAML date) is skipped."""
    key = hashlib.sha256(text + f"|{COPY_FORMAT}|{marshal.version}".encode()).hexdigest()[:16]
    folder = cache_dir()
    copy = folder / f"catalog-{key}.marshal"
    try:
        raw = marshal.loads(copy.read_bytes())
    except FileNotFoundError:
        pass
    except (OSError, ValueError, EOFError, TypeError) as exc:
        log.warning("catalog copy %s unreadable (%s); parsing %s again", copy, type(exc).__name__, path)
    else:
        with contextlib.suppress(OSError):
            os.utime(copy)  # most recently used: the last to go
        return raw
    raw = _parse_yaml(text, path)
    try:
        write_atomic(copy, marshal.dumps(raw), 0o644)
    except (OSError, ValueError) as exc:
        log.info("catalog copy not kept at %s: %s", copy, exc)
        return raw
    _prune(folder)
    return raw


def _prune(folder: Path) -> None:
    """Only the KEPT_COPIES most recently used catalog copies stay in ``folder``."""
    def used(copy: Path) -> float:
        try:
            return copy.stat().st_mtime
        except OSError:  # gone meanwhile (another process pruned it)
            return 0.0
    for old in sorted(folder.glob("catalog-*.marshal"), key=used, reverse=True)[KEPT_COPIES:]:
        old.unlink(missing_ok=True)


def _parse_yaml(text: bytes, path: str) -> Any:
    import yaml  # only when the file is new or changed: importing it is ~40 ms of a start-up

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: five times the pure-Python one's speed
    try:
        return yaml.load(text.decode("utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    except UnicodeDecodeError as exc:
        raise CatalogError(f"catalog {path} is not UTF-8: {exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog {path} is not valid YAML: {exc}") from None


# --- validation at load ------------------------------------------------------------------
def _categories(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        raise ValueError("missing or not a mapping")
    return {str(code): {**c, "code": str(code)} if isinstance(c, dict) else c for code, c in value.items()}


def _identities(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("missing or not a mapping of identity to its accepted_cards")
    return {str(name): {**r, "identity": str(name)} if isinstance(r, dict) else r for name, r in value.items()}


def _items(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise ValueError("missing or empty")
    return value


def _home_items(value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or len(value) > MAX_HOME_ITEMS:
        raise ValueError(f"must be a list of at most {MAX_HOME_ITEMS} item ids")
    if len(set(value)) != len(value):
        raise ValueError("an item is listed twice")
    return value


@dataclass(frozen=True, config=RECORD)
class _CatalogFile:
    """The document's top level; its items are checked against it afterwards."""

    categories: Annotated[dict[str, Category], BeforeValidator(_categories)] = Field(None, validate_default=True)
    items: Annotated[list[Any], BeforeValidator(_items)] = Field(None, validate_default=True)
    # The card types each identity requirement accepts unless an item says otherwise (accepted_cards).
    identities: Annotated[dict[str, IdentityRule], BeforeValidator(_identities)] = Field(None, validate_default=True)
    common_fields: Any = None  # YAML anchors only
    # The items the station is known for: large tiles on the home screen (config ui.home_items overrides).
    home_items: Annotated[tuple[ItemId, ...], BeforeValidator(_home_items)] = ()

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, (dict, ArgsKwargs)):
            raise Invalid("document", "must be a mapping with categories and items")
        return data


_FILE = TypeAdapter(_CatalogFile)
_ITEMS = TypeAdapter(tuple[CatalogItem, ...])


def parse_catalog(raw: Any) -> Catalog:
    """Build a Catalog from the parsed YAML document. Raises CatalogError naming the item and key."""
    try:
        top = _FILE.validate_python(raw)
    except ValidationError as exc:
        raise catalog_error(exc, []) from None
    try:
        items = _ITEMS.validate_python(top.items, context={"categories": top.categories,
                                                           "identities": top.identities})
    except ValidationError as exc:
        raise catalog_error(exc, top.items, ("items",)) from None
    seen_ids: set[str] = set()
    seen_ops: dict[str, str] = {}
    for item in items:
        if item.id in seen_ids:
            raise fail(f"item {item.id}", "id", "duplicate item id")
        if item.operation in seen_ops:
            raise fail(f"item {item.id}", "operation",
                        f"operation {item.operation!r} already used by {seen_ops[item.operation]}")
        seen_ids.add(item.id)
        seen_ops[item.operation] = item.id
    for item_id in top.home_items:
        if item_id not in seen_ids:
            raise fail("top level", "home_items", f"names no item of the catalog: {item_id!r}")
    return Catalog(items, tuple(top.categories.values()), tuple(top.home_items))


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
