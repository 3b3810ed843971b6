"""Sample backend Documents for the print template tests (invented people and numbers)."""
from __future__ import annotations

import json
from typing import Any

SIGNATURE = "q2V0cmFpbmluZy1zaWduYXR1cmUtbm90LXJlYWwtYnV0LWJhc2U2NC1zaGFwZWQtZm9yLXRlc3RzLW9ubHk9PQ=="


def document(doc_type: str, content: dict[str, Any], *, title_zh: str = "", code: str = "7K3F9Q2M") -> dict[str, Any]:
    """A Document as the backend returns it, with a compact JSON payload naming it."""
    doc_id = f"DOC-20261129-{abs(hash(doc_type)) % 10000:04d}"
    payload = json.dumps({"d": doc_id, "t": doc_type, "v": code, "i": "2026-11-29T12:00:00+08:00"},
                         separators=(",", ":"), ensure_ascii=False)
    return {
        "document_id": doc_id, "doc_type": doc_type, "verification_code": code, "title_zh": title_zh,
        "title_en": "", "issued_at": "2026-11-29T12:00:00+08:00", "content": content,
        "qr_payload": payload, "signature": SIGNATURE,
    }


HOUSEHOLD = {
    "name": "王小明", "gender": "男", "ethnicity": "汉", "birth_date": "1985-03-15",
    "id_number": "37010219850315123X", "address": "山东省济南市历下区泉城路188号3单元502室",
    "household_head": "王小明", "relation_to_head": "户主",
    "registration_authority": "济南市公安局历下分局泉城路派出所", "purpose": "子女入学", "valid_days": 30,
    "members": [{"name": "孙丽", "relation_to_head": "配偶", "gender": "女", "birth_date": "1988-12-12"},
                {"name": "王思琪", "relation_to_head": "女儿", "gender": "女", "birth_date": "2000-02-29"}],
}

VIOLATIONS = [
    {"violation_time": "2026-10-0%d 08:15" % d, "violation_place": "经十路与舜耕路路口",
     "violation_desc": "机动车违反禁令标志指示", "fine_yuan": 100, "points": 3, "payment_status": "未缴款"}
    for d in range(1, 4)
]

CONTENT_BY_TYPE: dict[str, dict[str, Any]] = {
    "household_certificate": HOUSEHOLD,
    "kinship_certificate": {"name": "王小明", "id_number": "37010219850315123X", "relative_name": "王思琪",
                            "relative_id_number": "370102200002296780", "relationship": "父女"},
    "deregistration_certificate": {"deceased_name": "马德山", "deceased_id_number": "370103195902021238",
                                   "deregistration_date": "2024-05-06", "deregistration_reason": "死亡",
                                   "applicant_name": "李秀英", "relationship": "配偶"},
    "former_name_certificate": {"name": "李秀英", "id_number": "370103196208082347", "former_name": "李秀芳",
                                "change_date": "1980-09-01", "change_reason": "本人申请"},
    "temporary_identity_certificate": {"name": "王小明", "id_number": "37010219850315123X", "gender": "男",
                                       "reason": "身份证遗失补领期间乘机", "valid_until": "2026-12-29"},
    "no_criminal_record_certificate": {"name": "王小明", "id_number": "37010219850315123X",
                                       "query_date": "2026-11-29", "purpose": "就业", "valid_days": 90},
    "traffic_violation_decision": {"decision_number": "3701021234567890", "name": "王小明",
                                   "license_number": "37010219850315123X", "plate_number": "鲁A12345",
                                   "violation_time": "2026-10-01 08:15", "violation_place": "经十路与舜耕路路口",
                                   "violation_desc": "机动车违反禁令标志指示",
                                   "legal_basis": "《中华人民共和国道路交通安全法》第九十条",
                                   "fine_yuan": 100, "points": 3},
    "vehicle_violation_record": {"plate_number": "鲁A12345", "query_date": "2026-11-29", "violations": VIOLATIONS},
    "safe_driving_certificate": {"name": "王小明", "license_number": "37010219850315123X", "license_class": "C1",
                                 "period_from": "2023-11-29", "period_to": "2026-11-29",
                                 "violation_count": 0, "accident_count": 0},
    "accident_determination": {"accident_number": "370102-2026-00123", "accident_time": "2026-11-01 17:40",
                               "accident_place": "泉城路与县西巷路口", "facts": "甲车变更车道时与乙车发生刮擦。",
                               "responsibility": "甲车负全部责任",
                               "parties": [{"name": "王小明", "role": "甲车驾驶人", "plate_number": "鲁A12345",
                                            "responsibility": "全部责任"},
                                           {"name": "赵国强", "role": "乙车驾驶人", "plate_number": "鲁A67890",
                                            "responsibility": "无责任"}]},
    "acceptance_slip": {"reference": "SL-20261129-0042", "item_name": "户口迁移申请", "applicant_name": "刘芳",
                        "submitted_at": "2026-11-29 12:00", "expected_days": 5,
                        "materials": [{"name": "居民身份证", "count": 1, "note": "原件"}]},
}
