"""The flow syntax of `kiosk demo --flow`: ITEM[:OPTION]... read into a FlowScript, and its help text."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from kiosk.demo import people
from kiosk.errors import ConfigError

DEFAULT_FLOW = "H01"
ANSWER_LOST = "answer_lost"  # the backend simulator's fault: an operation's answers lost on the way back
CHIP_FAULTS = ("tampered", "cloned")  # chip=: the chip reader simulator's forged chips
TRAVEL_ENTRY_FIELDS = ("document_number", "birth_date", "expiry_date")  # typed under mrz=typed


def device_faults() -> frozenset[str]:
    """Every fault a device simulator knows, by its config name."""
    from kiosk.hardware.simulators import a4, camera, idcard, pcsc, receipt, scanner

    classes = (a4.SimA4Printer, camera.SimCamera, idcard.SimIdCardReader, pcsc.SimChipReader,
               receipt.SimReceiptPrinter, scanner.SimScanner)
    return frozenset().union(*(c.FAULTS for c in classes))


# --- reading an option's value: each returns the FlowScript field's value or raises ValueError saying why ---
def one_of(*choices: str) -> Callable[[str], str]:
    """A reader that takes only ``choices``."""
    def read(value: str) -> str:
        if value not in choices:
            raise ValueError(f"the only choice is {choices[0]}" if len(choices) == 1
                             else f"the choices are {', '.join(choices[:-1])} and {choices[-1]}")
        return value
    return read


def yes_no(value: str) -> bool:
    """False for no, 0 or false (any case); True for anything else."""
    return value.lower() not in ("no", "0", "false")


def as_given(value: str) -> str:
    """The value as given."""
    return value


def fault_kind(value: str) -> str:
    """answer_lost or a device simulator's fault."""
    if value != ANSWER_LOST and value not in device_faults():
        raise ValueError(f"not a fault; faults are {ANSWER_LOST} and the device faults "
                         f"{', '.join(sorted(device_faults()))}")
    return value


def answer_count(value: str) -> int:
    """A number of answers (1, 2, ...), or all (-1)."""
    if value != "all" and not (value.isdigit() and int(value) > 0):
        raise ValueError("a number of answers (1, 2, ...) or all")
    return -1 if value == "all" else int(value)


@dataclass(frozen=True)
class FlowOption:
    """One KEY=VALUE option of the flow syntax: the FlowScript field it sets, how its value is read, its help."""

    field: str
    read: Callable[[str], Any]  # the value's text -> the field's value; raises ValueError saying what is allowed
    help: str  # its lines in FLOW_SYNTAX: KEY=VALUE, then what it does
    repeats: bool = False  # may be given again: the field is the tuple of every value


# Every KEY=VALUE option, in the order `kiosk demo --help` lists them. Any other KEY must be
# a field of the flow's item (FlowScript.check). A new option is one entry here, one field
# of FlowScript, and what the resident (or the simulators) make of it.
OPTIONS: dict[str, FlowOption] = {
    "leave": FlowOption("leave", as_given, """\
leave=SCREEN  walk away on that screen (identify, face, form, confirm, payment, done):
              the idle timeout ends the visit"""),
    "mode": FlowOption("mode", one_of("care", "normal"), """\
mode=care     the resident first turns care mode (关怀模式) on by touching its switch on the
              home screen: large type, paged lists; mode=normal turns it off where the
              station starts in care mode (summary.json "mode" says which one the flow ran in)"""),
    "pay": FlowOption("pay", yes_no, """\
pay=no        show the QR code but never pay (the payment times out)"""),
    "slip": FlowOption("slip", yes_no, """\
slip=no       read a query's results on screen without printing the slip it offers"""),
    "mrz": FlowOption("mrz", one_of("typed"), """\
mrz=typed     a travel document whose data page the scanner cannot read: the resident
              types its number and dates (document_number=, birth_date=, expiry_date=
              type other values)"""),
    "fault": FlowOption("faults", fault_kind, """\
fault=KIND    a fault for this flow, counted where a simulator applies it (summary.json
              "faults"): answer_lost (the backend does the item's operation, then its
              answers are lost on the way back) or a device fault by its config name
              (paper_out, cover_open, jam, offline, card_removed_mid_read, ...)""", repeats=True),
    "lost": FlowOption("lost", answer_count, """\
lost=N        with fault=answer_lost: lose the first N answers (default 2); lost=all
              loses every one (the outcome stays unknown)"""),
    "chip": FlowOption("chip", one_of(*CHIP_FAULTS), """\
chip=tampered a travel document chip whose DG1 was altered after it was signed
chip=cloned   a validly signed chip whose DG1 is not the document presented"""),
}

# How `kiosk demo --flow` scripts the resident (shown by `kiosk demo --help`).
FLOW_SYNTAX = f"""\
A flow is ITEM[:OPTION]...; options script the resident for that flow:
  PERSON        who presents their card: {', '.join(people.PEOPLE)}
                (default: the person whose records pass the item, see kiosk/demo/people.py)
  FIELD=VALUE   type (or choose the option with) this value instead of the happy-path one
""" + "".join("".join(f"  {line}\n" for line in option.help.splitlines()) for option in OPTIONS.values()) + """\
Any other option is refused. --state DIR keeps the journal and the backend simulator's
database in DIR, so a later run starts with the recovery of what an earlier one left open.
e.g. --flow H01 S01:ZHANG T02:violation=WF0002 S01:LIU H12:leave=form E01:mrz=typed
     H13:fault=answer_lost E01:chip=cloned"""


@dataclass(frozen=True)
class FlowScript:
    """One flow of a demo run: the item and how the scripted resident behaves in it (one field per option)."""

    item: str
    person: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # FIELD=VALUE: what the resident types or chooses
    leave: str = ""
    mode: str = ""  # "care" or "normal": the resident switches to it first; "": the station's default
    pay: bool = True
    slip: bool = True  # take the optional slip a query offers
    mrz: str = ""  # "typed": the resident types the data page's details
    faults: tuple[str, ...] = ()  # fault=KIND: answer_lost or a device fault's config name
    lost: int = 2  # with answer_lost: how many answers are lost (-1: all)
    chip: str = ""  # chip=tampered|cloned

    @classmethod
    def parse(cls, text: str) -> "FlowScript":
        """``ITEM[:PERSON][:KEY=VALUE]...`` (FLOW_SYNTAX); a KEY that is no option is kept as a field's value,
        checked against the item by :meth:`check`. Raises ConfigError naming the option."""
        item, *options = text.split(":")
        settings: dict[str, Any] = {}
        values: dict[str, str] = {}
        for option in options:
            key, eq, value = option.partition("=")
            if not eq:
                try:
                    settings["person"] = people.person_key(key)
                except KeyError as exc:
                    raise ConfigError(str(exc.args[0]), key="flow", value=text) from None
            elif key in OPTIONS:
                spec = OPTIONS[key]
                try:
                    read = spec.read(value)
                except ValueError as exc:
                    raise ConfigError(f"{text}: {key}={value}: {exc}", key="flow", value=text) from None
                settings[spec.field] = (*settings.get(spec.field, ()), read) if spec.repeats else read
            else:
                values[key] = value
        if "lost" in settings and ANSWER_LOST not in settings.get("faults", ()):
            raise ConfigError(f"{text}: lost= goes with fault={ANSWER_LOST}", key="flow", value=text)
        return cls(item.strip().upper(), values=values, **settings)

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
    def typed_mrz(self) -> bool:
        """Whether the resident types the travel document's details (mrz=typed)."""
        return self.mrz == "typed"

    @property
    def scripted_fault(self) -> bool:
        """Whether the flow injects a fault (its failing is then part of the script)."""
        return bool(self.faults or self.chip)
