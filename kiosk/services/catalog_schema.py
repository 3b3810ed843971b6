"""The catalog YAML's vocabulary and value rules, and its errors in the catalog's words.

The records of :mod:`kiosk.services.catalog` are declared with these: each ``BeforeValidator``
checks one kind of YAML value (text, a flag, a list of lines, a fee, outputs) and raises the
problem as the catalog's messages have always said it; :func:`catalog_error` turns pydantic's
first error into ``CatalogError("catalog: <where>: <key>: <problem>")``, the item and field
named as a catalog author reads them.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Mapping

from pydantic import BeforeValidator, ConfigDict, ValidationError

from kiosk.errors import CatalogError
from kiosk.services.form_values import resolve_date

KINDS = ("certificate", "application", "query", "payment", "appointment", "report", "guide", "verify")
IDENTITIES = ("none", "id_card", "id_card_and_face", "travel_document")
OUTPUTS = ("a4_document", "receipt", "slip", "screen")
FIELD_TYPES = ("text", "digits", "phone", "date", "plate", "choice", "number", "lookup", "id_number")
# The card types each way of identifying can read: the ID card reader (GA 467) reads resident ID
# cards and the two permanent-residence cards, the chip reader passports and travel permits. Which
# of them an item accepts is catalog data (accepted_cards); a card no reader yields is refused there.
READABLE_CARDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "id_card": ("resident", "foreign_permanent", "hkmt_residence"),
    "id_card_and_face": ("resident", "foreign_permanent", "hkmt_residence"),
    "travel_document": ("passport", "permit"),
}
CARD_TYPES = ("resident", "foreign_permanent", "hkmt_residence", "passport", "permit")
OPERATION_RE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
ITEM_ID_RE = re.compile(r"^[A-Z][0-9]{2}$")
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ICON_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")

RECORD = ConfigDict(extra="forbid")  # a key the schema does not declare is a typo, refused


class Invalid(ValueError):
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
            raise Invalid(key, bad) if key else ValueError(bad)
        return text
    return BeforeValidator(check)


def _optional_icon(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not ICON_RE.match(value):
        raise ValueError(f"bad icon name {value!r}")
    return value


def _item_id(value: Any) -> str:
    if not isinstance(value, str) or not ITEM_ID_RE.match(value):
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


def _cards(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or any(c not in CARD_TYPES for c in value):
        raise ValueError(f"must be a list drawn from {', '.join(CARD_TYPES)}")
    return tuple(value)


def unreadable_card(identity: str, cards: tuple[str, ...]) -> str:
    """The first of ``cards`` that no reader of ``identity`` yields ('' when every one can be read)."""
    return next((c for c in cards if c not in READABLE_CARDS.get(identity, ())), "")


# What a record's field may hold, each with its check.
Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[str, BeforeValidator(_optional_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Lines = Annotated[tuple[str, ...], BeforeValidator(_lines)]
ItemId = Annotated[str, BeforeValidator(_item_id)]
Kind = Annotated[str, _one_of(KINDS, "kind")]
Identity = Annotated[str, _one_of(IDENTITIES, "identity")]
Outputs = Annotated[tuple[str, ...], BeforeValidator(_outputs)]
OperationName = Annotated[str, _named(OPERATION_RE, "bad operation name")]
Fee = Annotated[float | None, BeforeValidator(_fee)]
Minutes = Annotated[int, BeforeValidator(_minutes)]
FieldName = Annotated[str, _named(FIELD_NAME_RE, "bad field name", "fields.name")]
FieldType = Annotated[str, _one_of(FIELD_TYPES, "type")]
Pattern = Annotated[str | None, BeforeValidator(_pattern)]
Length = Annotated[int | None, BeforeValidator(_length)]
LookupSource = Annotated[str | None, BeforeValidator(_as_text)]
DateBound = Annotated[str | None, BeforeValidator(_date_bound)]
Number = Annotated[float | None, BeforeValidator(_number)]
ChoiceValue = Annotated[str, BeforeValidator(str)]
CardTypes = Annotated[tuple[str, ...], BeforeValidator(_cards)]
# An icon of the installed icon set (Font Awesome 4.7, fonts-font-awesome), by its name without "fa-".
IconName = Annotated[str, _named(ICON_RE, "bad icon name")]
OptionalIconName = Annotated[str, BeforeValidator(_optional_icon)]


# --- errors in the catalog's words ----------------------------------------------------------
def fail(where: str, key: str, problem: str) -> CatalogError:
    """The catalog's error: where (an item, a field of it, a category, the top level), the key, the problem."""
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
    if head == "identities" and rest:
        return f"identity {rest[0]}", _last_key(rest[1:], "identity")
    if head != "items" or not rest:
        return "top level", str(head)
    index, rest = rest[0], rest[1:]
    raw = raw_items[index] if isinstance(raw_items[index], dict) else {}
    item_id = raw.get("id")
    if rest[:1] == ("id",) or not isinstance(item_id, str) or not ITEM_ID_RE.match(item_id):
        return f"items[{index}]", _last_key(rest, "item")
    where = f"item {item_id}"
    if rest[:1] == ("fields",) and len(rest) > 1:
        field = raw["fields"][rest[1]]
        name = field.get("name")
        if isinstance(name, str) and FIELD_NAME_RE.match(name.strip()):
            where = f"{where} field {name.strip()}"
        return where, _last_key(rest[2:], "fields")
    return where, _last_key(rest, "item")


def catalog_error(exc: ValidationError, raw_items: list[Any], prefix: tuple[Any, ...] = ()) -> CatalogError:
    """The first problem of ``exc`` as a CatalogError naming the item, the field and the key.

    The first item's problem wins; within it a bad id, then an unknown key (before the
    "missing" it may have caused), then the rest in pydantic's order.
    """
    def rank(error: Mapping[str, Any]) -> tuple[int, int]:
        loc = prefix + tuple(error["loc"])
        index = loc[1] if len(loc) > 1 and loc[0] == "items" else -1
        unknown_key = error["type"] in ("unexpected_keyword_argument", "extra_forbidden")
        return index, 0 if loc[2:3] == ("id",) else 1 if unknown_key else 2

    error = min(exc.errors(), key=rank)
    where, key = _where(prefix + tuple(error["loc"]), raw_items)
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):
        key = cause.key
    return fail(where, key, _problem(error))
