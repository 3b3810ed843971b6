"""A4 documents: text, embedded font, QR and layout fallbacks, read back from the PDF."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pypdf
import pytest

from print_templates import documents
from print_templates.documents import DocumentInvalid, doc_types, layout_for, render_pdf
from print_templates.qr import SignedPayload, parse_qr_text, qr_matrix, qr_text

from sample_documents import (ALTERNATIVE_CONTENT, CONTENT_BY_TYPE, HOUSEHOLD, SIGNATURE, VIOLATIONS,
                              compact_document, document)

TERMINAL = "JN-TEST-0007"


def _text(pdf: Path) -> str:
    reader = pypdf.PdfReader(str(pdf))
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


def _fonts(pdf: Path) -> list[dict]:
    reader = pypdf.PdfReader(str(pdf))
    found = []
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            found.append(ref.get_object())
    return found


@pytest.fixture
def household(tmp_path: Path) -> tuple[dict, Path]:
    doc = document("household_certificate", HOUSEHOLD, title_zh="户籍证明")
    return doc, render_pdf(doc, tmp_path / "out" / "h.pdf", terminal_id=TERMINAL)


def test_household_certificate_text_has_title_name_code_and_terminal(household: tuple[dict, Path]) -> None:
    doc, pdf = household
    text = _text(pdf)
    assert "户籍证明" in text
    assert "王小明" in text
    assert "37010219850315123X" in text
    assert f"核验码：{doc['verification_code']}" in text
    assert TERMINAL in text
    assert "孙丽" in text and "王思琪" in text  # the members table
    assert "户籍登记在山东省济南市历下区泉城路188号3单元502室，户号370102012345" in text


def test_cjk_font_is_embedded_as_a_subset(household: tuple[dict, Path]) -> None:
    _, pdf = household
    cjk = [f for f in _fonts(pdf) if "WenQuanYi" in str(f["/BaseFont"])]
    assert cjk, "no WenQuanYi font in the page resources"
    for font in cjk:
        assert re.match(r"^/[A-Z]{6}\+", str(font["/BaseFont"])), "not a subset font name"
        descriptor = font["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, "TrueType program not embedded"
        assert len(descriptor["/FontFile2"].get_object().get_data()) > 1000


def _scan(pdf: Path, dpi: int, out: Path) -> list[list[str]]:
    """What zbarimg reads off each page of ``pdf`` rendered at ``dpi``, page by page."""
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(pdf), str(out)], check=True, timeout=60)
    pages = []
    for png in sorted(out.parent.glob(f"{out.name}*.png")):
        found = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                               capture_output=True, text=True, timeout=60)
        pages.append([line for line in found.stdout.splitlines() if line])
    return pages


@pytest.mark.parametrize("form", ["compact", "json"])
def test_qr_decodes_from_a_150_dpi_render_and_splits_back(tmp_path: Path, form: str) -> None:
    doc = compact_document("household_certificate", HOUSEHOLD) if form == "compact" else \
        document("household_certificate", HOUSEHOLD)
    pdf = render_pdf(doc, tmp_path / "h.pdf", terminal_id=TERMINAL)
    expected = qr_text(doc["qr_payload"], doc["signature"])
    assert _scan(pdf, 150, tmp_path / "copy") == [[expected]]
    assert parse_qr_text(expected) == SignedPayload(doc["qr_payload"], doc["signature"])
    if form == "compact":
        assert len(expected) == 151 and len(qr_matrix(expected)) == 41  # version 6, all alphanumeric


def test_qr_text_splits_back_even_when_payload_holds_the_separator() -> None:
    payload = '{"n":"a|b","v":"X"}'
    parsed = parse_qr_text(qr_text(payload, SIGNATURE))
    assert (parsed.payload, parsed.signature) == (payload, SIGNATURE)
    assert parse_qr_text(payload).signature == ""  # unsigned text stays whole


def _values(content: dict) -> list[tuple[str, object]]:
    """Every printable (key, value) in content, nested records and tables included."""
    out = []
    for key, value in content.items():
        if isinstance(value, list):
            out += [(f"{key}.{k}", v) for rec in value for k, v in rec.items()]
        elif isinstance(value, dict):
            out += [(f"{key}.{k}", v) for k, v in value.items()]
        else:
            out.append((key, value))
    return out


@pytest.mark.parametrize("doc_type,content", sorted(CONTENT_BY_TYPE.items()) + sorted(ALTERNATIVE_CONTENT.items()))
def test_every_catalog_document_renders_its_content(tmp_path: Path, doc_type: str, content: dict) -> None:
    pdf = render_pdf(document(doc_type, content), tmp_path / f"{doc_type}.pdf", terminal_id=TERMINAL)
    text = _text(pdf)
    assert re.sub(r"\s+", "", layout_for(doc_type).title_zh) in text
    for key, value in _values(content):
        shown = re.sub(r"\s+", "", str(value)) in text
        if key.endswith("_en"):
            assert not shown, f"{doc_type}: English twin {key} printed on a Chinese document"
        else:
            assert shown, f"{doc_type}: {key}={value!r} missing"


def test_the_backend_statement_is_the_body_and_nested_records_get_their_labels(tmp_path: Path) -> None:
    content = CONTENT_BY_TYPE["kinship_certificate"]
    text = _text(render_pdf(document("kinship_certificate", content), tmp_path / "k.pdf", terminal_id=TERMINAL))
    assert text.count("经核查户籍资料，王小明与王思琪系父女关系。") == 1
    assert "申请人姓名王小明性别男" in text
    assert "亲属姓名王思琪性别女" in text


def test_aliases_share_a_layout() -> None:
    assert layout_for("traffic_violation_decision").title_zh == layout_for("traffic_penalty_decision").title_zh
    assert layout_for("traffic_violation_decision").title_zh == "公安交通管理简易程序处罚决定书"


def test_every_layout_in_the_yaml_is_a_catalog_document_or_the_test_page() -> None:
    assert set(doc_types()) == set(CONTENT_BY_TYPE) | {"a4_test_page"}


def test_unknown_doc_type_falls_back_to_a_titled_key_value_layout(tmp_path: Path) -> None:
    doc = document("boat_license_note", {"name": "王小明", "船名": "泉城一号", "hull_no": "LU-0042"},
                   title_zh="船舶登记告知单")
    text = _text(render_pdf(doc, tmp_path / "x.pdf", terminal_id=TERMINAL))
    assert "船舶登记告知单" in text
    assert "船名泉城一号" in text
    assert "hull_noLU-0042" in text
    assert "7K3F9Q2M" in text


def test_content_keys_the_layout_does_not_name_still_print(tmp_path: Path) -> None:
    doc = document("household_certificate", {**HOUSEHOLD, "marital_status": "已婚", "new_backend_key": "值42"})
    text = _text(render_pdf(doc, tmp_path / "h.pdf", terminal_id=TERMINAL))
    assert "婚姻状况已婚" in text
    assert "new_backend_key值42" in text


def test_long_tables_flow_onto_more_pages_each_with_the_verification_footer(tmp_path: Path) -> None:
    many = [dict(v, occurred_at=f"2026-{m:02d}-01 08:00") for m in range(1, 13) for v in VIOLATIONS]
    doc = document("vehicle_violation_record", {"plate": "鲁A12345", "violations": many})
    pdf = render_pdf(doc, tmp_path / "v.pdf", terminal_id=TERMINAL)
    reader = pypdf.PdfReader(str(pdf))
    assert len(reader.pages) >= 2
    for page in reader.pages:
        assert "核验码：7K3F9Q2M" in re.sub(r"\s+", "", page.extract_text())
    assert _scan(pdf, 150, tmp_path / "page") == [[qr_text(doc["qr_payload"], doc["signature"])]] * len(reader.pages)


@pytest.mark.parametrize("missing", ["doc_type", "verification_code", "qr_payload"])
def test_a_document_without_its_anchors_is_refused(tmp_path: Path, missing: str) -> None:
    doc = document("household_certificate", HOUSEHOLD)
    del doc[missing]
    with pytest.raises(DocumentInvalid) as err:
        render_pdf(doc, tmp_path / "h.pdf", terminal_id=TERMINAL)
    assert err.value.code == "document_invalid"
    assert not list(tmp_path.iterdir())


def test_render_is_atomic_and_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "h.pdf"
    target.write_bytes(b"previous")

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(documents, "_story", boom)
    with pytest.raises(RuntimeError):
        render_pdf(document("household_certificate", HOUSEHOLD), target, terminal_id=TERMINAL)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["h.pdf"]
