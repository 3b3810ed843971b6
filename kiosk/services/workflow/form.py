"""The form step over an item's fields: lookup options, validation, the confirm screen's summary, a guide's lines."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from kiosk.errors import FieldError
from kiosk.services.catalog import CatalogItem, FieldSpec

if TYPE_CHECKING:
    from kiosk.services.backend import BackendClient

Options = list[dict[str, Any]]


@dataclass(frozen=True)
class SummaryRow:
    """One line of the confirm screen: label and value in each language.

    ``data`` marks a value that is the resident's own or their record's (what they typed, a
    lookup option naming their plate or decision), shown as it is in either language.
    """

    label_zh: str
    label_en: str
    value_zh: str
    value_en: str
    data: bool = False

    def label(self, lang: str) -> str:
        """The label in ``lang``."""
        return self.label_zh if lang.startswith("zh") else self.label_en

    def value(self, lang: str) -> str:
        """The value in ``lang``."""
        return self.value_zh if lang.startswith("zh") else self.value_en


def field(item: CatalogItem, name: str) -> FieldSpec:
    """The item's field called ``name``. Raises FieldError."""
    for spec in item.fields:
        if spec.name == name:
            return spec
    raise FieldError(name, f"item {item.id} has no field {name}")


def choices(spec: FieldSpec) -> Options:
    """A choice field's options, in the shape a lookup's options have."""
    return [{"value": c.value, "label_zh": c.label_zh, "label_en": c.label_en} for c in spec.choices]


def lookup(backend: BackendClient, item: CatalogItem, spec: FieldSpec, id_number: str | None,
           values: Mapping[str, Any]) -> Options:
    """A lookup field's options from the backend (e.g. this resident's unpaid fines). Raises BackendError.

    ``values`` are the form's entries so far, for lookups that depend on an earlier choice.
    """
    known = {k: str(v) for k, v in values.items() if v not in (None, "") and not k.startswith("_")}
    answer = backend.lookup(str(spec.source), item.id, id_number, known)
    return list(answer.get("options", []) if isinstance(answer, Mapping) else answer)


def validate(item: CatalogItem, values: Mapping[str, Any], offered: Callable[[str], Options]) -> dict[str, Any]:
    """Every field's value checked and normalised (empty optional ones left out). Raises FieldError.

    A lookup's value must be one of the options ``offered(field name)`` gives (the backend's).
    """
    unknown = sorted(set(values) - {s.name for s in item.fields})
    if unknown:
        raise FieldError(unknown[0], f"item {item.id} has no field {unknown[0]}")
    clean: dict[str, Any] = {}
    for spec in item.fields:
        value = spec.validate(values.get(spec.name))
        if value == "":
            continue  # an optional field left empty
        if spec.type == "lookup" and not any(str(o.get("value")) == str(value) for o in offered(spec.name)):
            raise FieldError(spec.name, f"{spec.name}: not one of the offered choices",
                             message_en="Please choose one of the offered entries.")
        clean[spec.name] = value
    return clean


def summary(item: CatalogItem, values: Mapping[str, Any], options: Mapping[str, Options],
            amount_fen: int) -> list[SummaryRow]:
    """What the confirm screen shows, one row a line, fee last."""
    rows = [SummaryRow("业务", "Service", item.name_zh, item.name_en)]
    for spec in item.fields:
        if spec.name not in values:
            continue
        value = str(values[spec.name])
        if spec.type == "choice":
            rows.append(SummaryRow(spec.label_zh, spec.label_en, spec.choice_label(value, "zh_CN"),
                                   spec.choice_label(value, "en")))
            continue
        if spec.type == "lookup":
            opt = next((o for o in options.get(spec.name, ()) if str(o.get("value")) == value), None)
            if opt:
                zh = str(opt.get("label_zh", value))
                rows.append(SummaryRow(spec.label_zh, spec.label_en, zh, str(opt.get("label_en") or zh), data=True))
                continue
        rows.append(SummaryRow(spec.label_zh, spec.label_en, value, value, data=True))
    if amount_fen:
        fee = f"¥{amount_fen / 100:.2f}"
        rows.append(SummaryRow("费用", "Fee", fee, fee))
    return rows


def guide_lines(item: CatalogItem) -> list[dict[str, str]]:
    """What a guide shows: its text and the materials to bring."""
    return [{"label_zh": item.name_zh, "label_en": item.name_en, "value": item.guide_zh,
             "value_en": item.guide_en or item.guide_zh},
            {"label_zh": "办理材料", "label_en": "Materials", "value": "、".join(item.materials_zh),
             "value_en": "; ".join(item.materials_en or item.materials_zh)}]
