"""The demo residents' ID cards: what the simulated readers hold by default.

The backend simulator seeds its residents from this same list, so a simulated card read
finds its holder's records. All names, numbers and addresses are invented; the ID numbers
carry valid GB 11643 check characters. Each resident exists to exercise a rule:

- 王小明  household head; clean record; car 鲁A12345 with fine-only and points violations.
- 孙丽    his spouse, same household.
- 王思琪  their daughter, same household.
- 李秀英  long-term card; former name 李秀芳; her husband's death deregistration is on file.
- 张伟    a criminal record (no-criminal-record certificate refused); violations with points.
- 刘芳    registered in Zhengzhou, living in Jinan: residence registration and permit; the face
          matcher rejects her live photo (found-card scenario).
- 陈杰    an expired card (the identify step refuses it).
- 赵国强  long-term card; a case under review (certificate refused until it closes).

``DEMO_TRAVEL_DOCUMENTS`` are the chips the PC/SC simulator holds, each with the MRZ access
data (document number, birth and expiry dates as YYMMDD) that opens it:

- 王小明  Hong Kong/Macau travel permit with endorsements remaining (self-service endorsement).
- 孙丽    Hong Kong/Macau travel permit with its endorsements used up (renewal is offered).
- John SMITH  a British passport: a foreign guest (accommodation registration by passport).
"""
from __future__ import annotations

from dataclasses import dataclass

from kiosk.hardware.idcard import IdentityCard

_ISSUER_LIXIA = "济南市公安局历下分局"
_ISSUER_SHIZHONG = "济南市公安局市中分局"

DEMO_CARDS: tuple[IdentityCard, ...] = (
    IdentityCard("resident", "王小明", "37010219850315123X", "male", "汉", "01", "1985-03-15",
                 "山东省济南市历下区泉城路188号3单元502室", _ISSUER_LIXIA, "2015-03-15", "2035-03-15"),
    IdentityCard("resident", "孙丽", "370102198812128906", "female", "汉", "01", "1988-12-12",
                 "山东省济南市历下区泉城路188号3单元502室", _ISSUER_LIXIA, "2018-12-12", "2038-12-12"),
    IdentityCard("resident", "王思琪", "370102200002296780", "female", "汉", "01", "2000-02-29",
                 "山东省济南市历下区泉城路188号3单元502室", _ISSUER_LIXIA, "2021-03-01", "2031-03-01"),
    IdentityCard("resident", "李秀英", "370103196208082347", "female", "回", "03", "1962-08-08",
                 "山东省济南市市中区经七路56号1号楼201室", _ISSUER_SHIZHONG, "2010-08-08", "long-term"),
    IdentityCard("resident", "张伟", "370104199001013459", "male", "汉", "01", "1990-01-01",
                 "山东省济南市槐荫区经十路3000号", "济南市公安局槐荫分局", "2020-01-01", "2030-01-01"),
    IdentityCard("resident", "刘芳", "410105197805204568", "female", "汉", "01", "1978-05-20",
                 "河南省郑州市金水区花园路12号", "郑州市公安局金水分局", "2018-05-20", "2038-05-20"),
    IdentityCard("resident", "陈杰", "370112199511115674", "male", "满", "11", "1995-11-11",
                 "山东省济南市历城区花园路88号", "济南市公安局历城分局", "2015-11-11", "2025-11-11"),
    IdentityCard("resident", "赵国强", "370103195507127897", "male", "汉", "01", "1955-07-12",
                 "山东省济南市市中区英雄山路20号", _ISSUER_SHIZHONG, "2005-07-12", "long-term"),
)


def card_by_number(id_number: str) -> IdentityCard:
    """The demo card with this ID number. Raises KeyError."""
    for card in DEMO_CARDS:
        if card.id_number == id_number:
            return card
    raise KeyError("no demo card with that number")


@dataclass(frozen=True, repr=False)
class TravelDocument:
    """A passport or permit chip and the MRZ access data its BAC keys are derived from."""

    document_number: str
    birth_date: str  # YYMMDD, as printed in the MRZ
    expiry_date: str  # YYMMDD
    holder: IdentityCard  # what the chip yields once opened

    def __repr__(self) -> str:  # personal data stays out of tracebacks
        return f"TravelDocument({self.holder.card_type}, {self.document_number[:2]}******)"


_EXIT_ENTRY_ISSUER = "济南市公安局出入境管理支队"

DEMO_TRAVEL_DOCUMENTS: tuple[TravelDocument, ...] = (
    TravelDocument("C12345678", "850315", "330630", IdentityCard(
        "permit", "王小明", "37010219850315123X", "male", "汉", "01", "1985-03-15", "",
        _EXIT_ENTRY_ISSUER, "2023-07-01", "2033-06-30",
        extra={"document_number": "C12345678", "document_kind": "hk_macau_permit", "nationality": "CHN",
               "name_en": "WANG, XIAOMING", "endorsement_hk": "G", "endorsement_hk_trips": "2",
               "endorsement_hk_valid_to": "2027-06-30", "endorsement_mo": "G",
               "endorsement_mo_trips": "1", "endorsement_mo_valid_to": "2027-06-30"})),
    TravelDocument("C87654321", "881212", "340315", IdentityCard(
        "permit", "孙丽", "370102198812128906", "female", "汉", "01", "1988-12-12", "",
        _EXIT_ENTRY_ISSUER, "2024-03-16", "2034-03-15",
        extra={"document_number": "C87654321", "document_kind": "hk_macau_permit", "nationality": "CHN",
               "name_en": "SUN, LI", "endorsement_hk": "G", "endorsement_hk_trips": "0",
               "endorsement_hk_valid_to": "2025-03-15", "endorsement_mo": "", "endorsement_mo_trips": "0",
               "endorsement_mo_valid_to": ""})),
    TravelDocument("533401987", "800704", "310911", IdentityCard(
        "passport", "SMITH, JOHN", "533401987", "male", "", "", "1980-07-04", "",
        "HM Passport Office", "2021-09-11", "2031-09-11",
        extra={"document_number": "533401987", "document_kind": "passport", "nationality": "GBR",
               "name_en": "SMITH, JOHN"})),
)


def travel_document_by_number(document_number: str) -> TravelDocument:
    """The demo travel document with this number. Raises KeyError."""
    for doc in DEMO_TRAVEL_DOCUMENTS:
        if doc.document_number == document_number:
            return doc
    raise KeyError("no demo travel document with that number")
