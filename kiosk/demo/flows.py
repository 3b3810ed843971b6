"""The flow syntax of `kiosk demo --flow`: ITEM[:OPTION]... read into a FlowScript, and its help text."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiosk.demo import people
from kiosk.errors import ConfigError

DEFAULT_FLOW = "H01"

# How `kiosk demo --flow` scripts the resident (shown by `kiosk demo --help`).
FLOW_SYNTAX = """\
A flow is ITEM[:OPTION]...; options script the resident for that flow:
  PERSON        who presents their card: WANG, SUN, SIQI, LI, ZHANG, LIU, CHEN, ZHAO, SMITH
                (default: the person whose records pass the item, see kiosk/demo/people.py)
  FIELD=VALUE   type (or choose the option with) this value instead of the happy-path one
  leave=SCREEN  walk away on that screen (identify, face, form, confirm, payment, done):
                the idle timeout ends the visit
  pay=no        show the QR code but never pay (the payment times out)
  slip=no       read a query's results on screen without printing the slip it offers
  mrz=typed     a travel document whose data page the scanner cannot read: the resident
                types its number and dates (document_number=, birth_date=, expiry_date=
                type other values)
  fault=KIND    a fault for this flow, counted where a simulator applies it (summary.json
                "faults"): answer_lost (the backend does the item's operation, then its
                answers are lost on the way back) or a device fault by its config name
                (paper_out, cover_open, jam, offline, card_removed_mid_read, ...)
  lost=N        with fault=answer_lost: lose the first N answers (default 2); lost=all
                loses every one (the outcome stays unknown)
  chip=tampered a travel document chip whose DG1 was altered after it was signed
  chip=cloned   a validly signed chip whose DG1 is not the document presented
Any other option is refused. --state DIR keeps the journal and the backend simulator's
database in DIR, so a later run starts with the recovery of what an earlier one left open.
e.g. --flow H01 S01:ZHANG T02:violation=WF0002 S01:LIU H12:leave=form E01:mrz=typed
     H13:fault=answer_lost E01:chip=cloned"""

ANSWER_LOST = "answer_lost"  # the backend simulator's fault: an operation's answers lost on the way back
CHIP_FAULTS = ("tampered", "cloned")  # chip=: the chip reader simulator's forged chips
TRAVEL_ENTRY_FIELDS = ("document_number", "birth_date", "expiry_date")  # typed under mrz=typed


def device_faults() -> frozenset[str]:
    """Every fault a device simulator knows, by its config name."""
    from kiosk.hardware.simulators import a4, camera, idcard, pcsc, receipt, scanner

    classes = (a4.SimA4Printer, camera.SimCamera, idcard.SimIdCardReader, pcsc.SimChipReader,
               receipt.SimReceiptPrinter, scanner.SimScanner)
    return frozenset().union(*(c.FAULTS for c in classes))


@dataclass(frozen=True)
class FlowScript:
    """One flow of a demo run: the item and how the scripted resident behaves in it."""

    item: str
    person: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    leave: str = ""
    pay: bool = True
    typed_mrz: bool = False
    slip: bool = True  # take the optional slip a query offers
    faults: tuple[str, ...] = ()  # fault=KIND: answer_lost or a device fault's config name
    lost: int = 2  # with answer_lost: how many answers are lost (-1: all)
    chip: str = ""  # chip=tampered|cloned

    @classmethod
    def parse(cls, text: str) -> "FlowScript":
        """``ITEM[:PERSON][:FIELD=VALUE][:leave=SCREEN][:pay=no][:mrz=typed][:slip=no][:fault=KIND][:lost=N|all]
        [:chip=tampered|cloned]`` (FLOW_SYNTAX). Fields are checked against the item by :meth:`check`.

        Raises ConfigError.
        """
        item, *options = text.split(":")
        person, values, leave, pay, typed, slip = None, {}, "", True, False, True
        faults: list[str] = []
        lost: int | None = None
        chip = ""
        for option in options:
            key, eq, value = option.partition("=")
            if not eq:
                try:
                    person = people.person_key(key)
                except KeyError as exc:
                    raise ConfigError(str(exc.args[0]), key="flow", value=text) from None
            elif key == "leave":
                leave = value
            elif key == "pay":
                pay = value.lower() not in ("no", "0", "false")
            elif key == "slip":
                slip = value.lower() not in ("no", "0", "false")
            elif key == "mrz":
                if value != "typed":
                    raise ConfigError(f"mrz={value}: the only choice is mrz=typed", key="flow", value=text)
                typed = True
            elif key == "fault":
                if value != ANSWER_LOST and value not in device_faults():
                    raise ConfigError(f"{text}: fault={value} is not a fault; faults are {ANSWER_LOST} and the device "
                                      f"faults {', '.join(sorted(device_faults()))}", key="flow", value=text)
                faults.append(value)
            elif key == "lost":
                if value != "all" and not (value.isdigit() and int(value) > 0):
                    raise ConfigError(f"{text}: lost={value}: a number of answers (1, 2, ...) or all",
                                      key="flow", value=text)
                lost = -1 if value == "all" else int(value)
            elif key == "chip":
                if value not in CHIP_FAULTS:
                    raise ConfigError(f"{text}: chip={value}: the choices are {' and '.join(CHIP_FAULTS)}",
                                      key="flow", value=text)
                chip = value
            else:
                values[key] = value
        if lost is not None and ANSWER_LOST not in faults:
            raise ConfigError(f"{text}: lost= goes with fault={ANSWER_LOST}", key="flow", value=text)
        return cls(item.strip().upper(), person, values, leave, pay, typed, slip, tuple(faults),
                   2 if lost is None else lost, chip)

    def check(self, item: Any) -> None:
        """Refuse, naming it, an option that is neither in the flow syntax nor a field of ``item``
        (nor, under mrz=typed, a travel-entry field). Raises ConfigError."""
        fields = {spec.name for spec in item.fields}
        if self.typed_mrz:
            fields |= set(TRAVEL_ENTRY_FIELDS)
        for key in self.values:
            if key not in fields:
                where = f"fields of {item.id}: {', '.join(sorted(fields))}" if fields else f"{item.id} has no fields"
                raise ConfigError(f"flow {self.item}: option {key!r} is not in the flow syntax and not a field "
                                  f"of the item ({where})", key="flow", value=key)
        if self.chip and item.identity != "travel_document":
            raise ConfigError(f"flow {self.item}: chip={self.chip} needs an item read from a travel document chip",
                              key="flow", value=f"chip={self.chip}")

    @property
    def scripted_fault(self) -> bool:
        """Whether the flow injects a fault (its failing is then part of the script)."""
        return bool(self.faults or self.chip)

