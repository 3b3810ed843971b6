"""A4 documents: the backend's Document rendered to a PDF anyone can verify.

Each ``doc_type`` has a declarative layout in ``layouts.yaml`` (title, paragraphs, the
content fields and tables it shows); this module draws any layout the same way with
reportlab, the WenQuanYi font subset-embedded, and on every page a footer with the
verification code and a QR of the signed payload (see :mod:`print_templates.qr`).

The QR is drawn as vector rectangles, 34 mm with its full four-module quiet zone: an image
of one pixel per module is resampled by whatever renders or prints it, and the blurred edges
were what kept a 150 dpi copy from decoding.
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from xml.sax.saxutils import escape

import yaml

from kiosk.errors import KioskError
from print_templates.fonts import register_reportlab_font
from print_templates.qr import qr_matrix, qr_text

if TYPE_CHECKING:
    from print_templates.pdf_signing import PdfSigner

LAYOUTS_PATH = Path(__file__).with_name("layouts.yaml")
GENERIC = "_generic"


class DocumentInvalid(KioskError):
    """The Document to print lacks what every printed document must carry."""

    code = "document_invalid"
    message_en = "The document could not be prepared for printing. Please ask the staff for help."


@dataclass(frozen=True)
class TableSpec:
    """A list-of-records content key shown as a table."""

    key: str
    title: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """How one doc_type is drawn; read from layouts.yaml."""

    doc_type: str
    title_zh: str
    title_en: str
    issuer: str
    intro: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    closing: tuple[str, ...] = ()
    note: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def label(self, key: str) -> str:
        """The Chinese label of a content key (the key itself when none is known)."""
        return self.labels.get(key, key)


@functools.lru_cache(maxsize=1)
def _raw_layouts() -> dict[str, Any]:
    with LAYOUTS_PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


_RESERVED = ("labels", "aliases", GENERIC)


def doc_types() -> tuple[str, ...]:
    """Every doc_type with a layout of its own."""
    return tuple(k for k in _raw_layouts() if k not in _RESERVED)


@functools.lru_cache(maxsize=None)
def layout_for(doc_type: str) -> Layout:
    """The layout of ``doc_type``; an unknown type gets the generic titled key/value layout."""
    raw = _raw_layouts()
    generic = raw[GENERIC]
    name = (raw.get("aliases") or {}).get(doc_type, doc_type)
    spec = raw.get(name) if name not in _RESERVED else None
    spec = spec or generic
    merged = {**generic, **spec} if spec is not generic else dict(generic)
    tables = tuple(TableSpec(k, v.get("title", k), tuple(v.get("columns", ())))
                   for k, v in (spec.get("tables") or {}).items())
    return Layout(
        doc_type=doc_type, title_zh=merged["title_zh"], title_en=merged.get("title_en", ""),
        issuer=merged.get("issuer", ""), intro=tuple(spec.get("intro") or ()),
        fields=tuple(spec.get("fields") or ()), tables=tables,
        closing=tuple(merged.get("closing") or ()), note=merged.get("note", ""),
        labels={**(raw.get("labels") or {}), **(spec.get("labels") or {})},
    )


# --- value formatting -------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "、".join(_fmt(v) for v in value if not isinstance(v, Mapping))
    if isinstance(value, Mapping):
        return "；".join(f"{k}：{_fmt(v)}" for k, v in value.items())
    return str(value)


def _fmt_date(value: str) -> str:
    try:
        when = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value or "")
    return f"{when.year}年{when.month}月{when.day}日"


def _is_table(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _fill(alternatives: tuple[str, ...], content: Mapping[str, Any]) -> tuple[str, frozenset[str]]:
    """The first paragraph whose placeholders all have values in content, and the keys it used."""
    for template in alternatives:
        keys = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        if all(_fmt(content.get(k)) for k in keys):
            return template.format_map({k: _fmt(content.get(k)) for k in keys}), frozenset(keys)
    return "", frozenset()


# --- drawing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Styles:
    title: Any
    subtitle: Any
    body: Any
    cell: Any
    label: Any
    small: Any
    right: Any
    heading: Any


@functools.lru_cache(maxsize=1)
def _styles() -> _Styles:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.styles import ParagraphStyle

    font = register_reportlab_font()
    base = ParagraphStyle("base", fontName=font, fontSize=11, leading=17, wordWrap="CJK")
    return _Styles(
        title=ParagraphStyle("title", parent=base, fontSize=22, leading=30, alignment=TA_CENTER,
                             spaceAfter=2),
        subtitle=ParagraphStyle("subtitle", parent=base, fontSize=9, leading=12, alignment=TA_CENTER,
                                textColor=colors.grey, spaceAfter=4),
        body=ParagraphStyle("body", parent=base, fontSize=12, leading=21, firstLineIndent=24,
                            spaceBefore=6, spaceAfter=6),
        cell=ParagraphStyle("cell", parent=base, fontSize=10.5, leading=15),
        label=ParagraphStyle("label", parent=base, fontSize=10.5, leading=15),
        small=ParagraphStyle("small", parent=base, fontSize=8.5, leading=12, textColor=colors.dimgrey),
        right=ParagraphStyle("right", parent=base, fontSize=12, leading=20, alignment=TA_RIGHT),
        heading=ParagraphStyle("heading", parent=base, fontSize=12, leading=18, spaceBefore=8,
                               spaceAfter=4),
    )


def _p(text: str, style: Any) -> Any:
    from reportlab.platypus import Paragraph

    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _kv_table(rows: list[tuple[str, str]], width: float) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    st = _styles()
    data = [[_p(label, st.label), _p(value, st.cell)] for label, value in rows]
    table = Table(data, colWidths=[width * 0.27, width * 0.73], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (0, -1), colors.Color(0.94, 0.94, 0.94)),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]))
    return table


def _records_table(spec_columns: tuple[str, ...], records: list[Mapping[str, Any]], layout: Layout,
                   width: float) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    st = _styles()
    columns = list(spec_columns) or []
    for rec in records:  # keys a record has beyond the declared columns are kept too
        columns += [k for k in rec if k not in columns and not isinstance(rec[k], (list, Mapping))]
    columns = [c for c in columns if any(_fmt(r.get(c)) for r in records)] or columns[:1]
    header = [_p(layout.label(c), st.label) for c in columns]
    body = [[_p(_fmt(r.get(c)), st.cell) for c in columns] for r in records]
    table = Table([header] + body, colWidths=[width / len(columns)] * len(columns), repeatRows=1,
                  hAlign="LEFT")
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.94, 0.94, 0.94)),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    return table


def _story(document: Mapping[str, Any], layout: Layout, width: float) -> list[Any]:
    from reportlab.platypus import Spacer

    st = _styles()
    content: Mapping[str, Any] = document.get("content") or {}
    title = document.get("title_zh") or layout.title_zh
    title_en = document.get("title_en") or layout.title_en
    story: list[Any] = [_p(title, st.title)]
    if title_en:
        story.append(_p(title_en, st.subtitle))
    story.append(_p(f"编号：{document.get('document_id', '')}", st.small))
    story.append(Spacer(1, 6))

    # the backend's own wording of what is certified wins over the layout's template
    statement = content.get("statement")
    if isinstance(statement, str) and statement.strip():
        intro, in_intro = statement.strip(), frozenset({"statement"})
    else:
        intro, in_intro = _fill(layout.intro, content)
    if intro:
        story.append(_p(intro, st.body))
    closing, in_closing = _fill(layout.closing, content)

    # A key the paragraphs already say is not repeated among the extra rows; English twins
    # (key_en) of Chinese values are left out of a Chinese document.
    shown = set(layout.fields) | {t.key for t in layout.tables} | {"issuer"} | in_intro | in_closing
    order = [k for k in layout.fields if k in content] + [
        k for k in content if k not in shown and not k.endswith("_en")]
    rows = [(layout.label(k), _fmt(content[k])) for k in order
            if not isinstance(content[k], Mapping) and not _is_table(content[k]) and _fmt(content[k])]
    if rows:
        story.append(_kv_table(rows, width))
    for key in order:  # nested records (applicant, relative, deceased...) as their own blocks
        record = content[key]
        if isinstance(record, Mapping) and record:
            block = [(layout.label(k), _fmt(v)) for k, v in record.items() if not k.endswith("_en") and _fmt(v)]
            if block:
                story.append(_p(layout.label(key), st.heading))
                story.append(_kv_table(block, width))

    tables = list(layout.tables) + [
        _table_spec_for(k) for k, v in content.items() if k not in {t.key for t in layout.tables} and _is_table(v)]
    for spec in tables:
        records = content.get(spec.key)
        if not _is_table(records):
            continue
        story.append(_p(spec.title or layout.label(spec.key), st.heading))
        story.append(_records_table(spec.columns, list(records), layout, width))

    if closing:
        story.append(_p(closing, st.body))
    story.append(Spacer(1, 18))
    story.append(_p(_issuer(content, layout), st.right))
    story.append(_p(_fmt_date(str(document.get("issued_at", ""))), st.right))
    if layout.note:
        story.append(Spacer(1, 12))
        story.append(_p(layout.note, st.small))
    return story


def _issuer(content: Mapping[str, Any], layout: Layout) -> str:
    """Who signs: the content's issuer, else the police station on record, else the layout's."""
    return str(content.get("issuer") or content.get("police_station") or layout.issuer)


def _table_spec_for(key: str) -> TableSpec:
    return TableSpec(key, "", ())


QR_SIZE_MM = 34  # the symbol with its quiet zone: a version-6 QR gets 0.69 mm modules
QUIET_MODULES = 4
FOOTER_MM = 40  # height of the verification block at the foot of every page


def _draw_qr(canvas: Any, matrix: list[list[bool]], x: float, y: float, size: float) -> None:
    """The QR as one filled path of module runs, quiet zone included in ``size`` (x, y: lower left)."""
    module = size / (len(matrix) + 2 * QUIET_MODULES)
    top = y + size - QUIET_MODULES * module
    path = canvas.beginPath()
    for row_index, row in enumerate(matrix):
        col = 0
        while col < len(row):
            if not row[col]:
                col += 1
                continue
            start = col
            while col < len(row) and row[col]:
                col += 1
            path.rect(x + (QUIET_MODULES + start) * module, top - (row_index + 1) * module,
                      (col - start) * module, module)
    canvas.saveState()
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)  # the quiet zone stays white whatever is behind it
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def _footer(canvas: Any, doc: Any, *, document: Mapping[str, Any], terminal_id: str,
            qr: list[list[bool]]) -> None:
    """Verification block on every page: code, ids, QR (bottom right)."""
    from reportlab.lib.units import mm

    font = register_reportlab_font()
    page_w, _ = doc.pagesize
    left, right = doc.leftMargin, page_w - doc.rightMargin
    top = FOOTER_MM * mm
    canvas.saveState()
    canvas.setLineWidth(0.5)
    canvas.line(left, top, right, top)
    size = QR_SIZE_MM * mm
    _draw_qr(canvas, qr, right - size, top - size - 1 * mm, size)  # bottom 5 mm above the paper's edge
    canvas.setFont(font, 13)
    canvas.drawString(left, top - 9 * mm, f"核验码：{document.get('verification_code', '')}")
    canvas.setFont(font, 8.5)
    lines = [
        f"文件编号：{document.get('document_id', '')}",
        f"出具时间：{document.get('issued_at', '')}",
        f"打印终端：{terminal_id}",
        "核验方式：在自助终端“证明文件真伪核验”扫描右侧二维码，或登录“e警通”输入核验码。",
        f"第 {doc.page} 页",
    ]
    y = top - 15 * mm
    for line in lines:
        canvas.drawString(left, y, line)
        y -= 4.5 * mm
    canvas.restoreState()


def _validate(document: Mapping[str, Any]) -> None:
    if not isinstance(document, Mapping):
        raise DocumentInvalid("document is not a mapping")
    for key in ("doc_type", "verification_code", "qr_payload"):
        if not isinstance(document.get(key), str) or not document.get(key):
            raise DocumentInvalid(f"document lacks {key}")
    if document.get("content") is not None and not isinstance(document.get("content"), Mapping):
        raise DocumentInvalid("document content is not a mapping")


def render_pdf(document: Mapping[str, Any], path: Path, *, terminal_id: str,
               signer: "PdfSigner | None" = None) -> Path:
    """Render a backend Document to an A4 PDF at ``path`` (written atomically); returns the path.

    With a ``signer`` (``PdfSigner.from_config(cfg)``) the file also carries a PDF signature.
    Raises DocumentInvalid for a Document without doc_type, verification code or QR payload,
    FontMissing when no WenQuanYi font is installed, PdfSigningFailed.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    _validate(document)
    path = Path(path)
    layout = layout_for(str(document["doc_type"]))
    qr = qr_matrix(qr_text(str(document["qr_payload"]), str(document.get("signature") or "")))

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".render-", suffix=".pdf", dir=path.parent)
    os.close(fd)
    try:
        doc = SimpleDocTemplate(
            tmp_name, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=20 * mm,
            bottomMargin=(FOOTER_MM + 5) * mm,  # the footer and a gap above it title=str(document.get("title_zh") or layout.title_zh),
            author=_issuer(document.get("content") or {}, layout),
            subject=str(document.get("document_id", "")), creator="police-kiosk print_templates",
            keywords=[str(document["verification_code"])],
        )

        def on_page(canvas: Any, d: Any) -> None:
            _footer(canvas, d, document=document, terminal_id=terminal_id, qr=qr)

        doc.build(_story(document, layout, doc.width), onFirstPage=on_page, onLaterPages=on_page)
        if signer is not None:
            signer.sign(Path(tmp_name))
        with open(tmp_name, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
