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


def compact_document(doc_type: str, content: dict[str, Any], *, code: str = "7K3F-9Q2M-XW4R-8TBN") -> dict[str, Any]:
    """A Document as the backend issues it today: a KD2: payload, signed with the demo document key."""
    from kiosk.services import signing
    from kiosk.services.document_payload import DocumentPayload, content_digest, encode_payload

    payload = encode_payload(DocumentPayload(code, 1795924800, "H01", content_digest(content)))
    return {**document(doc_type, content, code=code), "document_id": "D5e6216aafebf9367e310", "qr_payload": payload,
            "signature": signing.sign_document(signing.demo_backend_private_key(), payload)}


# Content shaped as the backend simulator issues it (kiosk/backend_sim/operations).
WANG = {"name": "王小明", "sex": "男", "ethnicity": "汉", "birth_date": "1985-03-15",
        "id_number": "37010219850315123X", "address": "山东省济南市历下区泉城路188号3单元502室"}
SIQI = {"name": "王思琪", "sex": "女", "ethnicity": "汉", "birth_date": "2000-02-29",
        "id_number": "370102200002296780", "address": "山东省济南市历下区泉城路188号3单元502室"}

HOUSEHOLD = {
    **WANG, "household_id": "370102012345", "household_type": "家庭户",
    "household_address": "山东省济南市历下区泉城路188号3单元502室", "head_name": "王小明", "relation_to_head": "户主",
    "police_station": "济南市公安局历下分局泉城路派出所", "purpose": "子女入学",
    "statement": "兹证明王小明（公民身份号码：37010219850315123X）户籍登记在山东省济南市历下区泉城路188号3单元502室，户号370102012345。",
    "valid_until": "2027-02-28",
    "members": [{"name": "孙丽", "relation_to_head": "配偶", "sex": "女", "birth_date": "1988-12-12"},
                {"name": "王思琪", "relation_to_head": "女儿", "sex": "女", "birth_date": "2000-02-29"}],
}

VIOLATIONS = [
    {"occurred_at": "2026-10-0%d 08:15" % d, "place": "经十路与舜耕路路口", "act": "机动车违反禁令标志指示",
     "fine_cny": 100, "points": 3, "status": "未处理"}
    for d in range(1, 4)
]

CONTENT_BY_TYPE: dict[str, dict[str, Any]] = {
    "household_certificate": HOUSEHOLD,
    "kinship_certificate": {"applicant": WANG, "relative": SIQI, "relationship": "父女",
                            "relationship_en": "father and daughter", "purpose": "就业",
                            "police_station": "济南市公安局历下分局泉城路派出所",
                            "statement": "经核查户籍资料，王小明与王思琪系父女关系。"},
    "deregistration_certificate": {
        "deceased": {"name": "马建国", "sex": "男", "ethnicity": "回", "birth_date": "1956-04-20",
                     "id_number": "370103195604201315", "address": "山东省济南市市中区经七路56号1号楼201室"},
        "death_date": "2024-05-01", "deregistered_on": "2024-05-06", "deregistration_reason": "死亡",
        "death_certificate_no": "SD2024050100123", "household_id": "370103004567", "applicant_name": "李秀英",
        "police_station": "济南市公安局市中分局经七路派出所",
        "statement": "马建国（公民身份号码：370103195604201315）因死亡于2024-05-06注销户口。"},
    "former_name_certificate": {
        "name": "李秀英", "sex": "女", "ethnicity": "回", "birth_date": "1962-08-08", "id_number": "370103196208082347",
        "former_names": [{"id_number": "370103196208082347", "former_name": "李秀芳", "changed_on": "1980-09-01",
                          "reason": "本人申请"}],
        "purpose": "房产登记", "police_station": "济南市公安局市中分局经七路派出所",
        "statement": "李秀英（公民身份号码：370103196208082347）曾用名李秀芳，与现用名李秀英系同一人。"},
    "temporary_identity_certificate": {**WANG, "application_number": "SL-20261129-0042", "purpose": "乘坐火车",
                                       "valid_until": "2026-12-29",
                                       "police_station": "济南市公安局历下分局泉城路派出所",
                                       "statement": "王小明的居民身份证正在办理中（受理编号SL-20261129-0042），特此证明其身份，有效期至2026-12-29。"},
    "no_criminal_record_certificate": {
        "name": "王小明", "sex": "男", "id_number": "37010219850315123X", "birth_date": "1985-03-15",
        "address": "山东省济南市历下区泉城路188号3单元502室", "purpose": "就业", "checked_until": "2026-11-29",
        "issuer": "济南市公安局历下分局泉城路派出所",
        "statement": "经查询全国违法犯罪人员信息资源库，截至2026年11月29日，未发现王小明（公民身份号码：37010219850315123X）有犯罪记录。",
        "note": "本证明仅证明截至出具之日的情况，用于就业。", "valid_until": "2027-02-28"},
    "traffic_penalty_decision": {
        "decision_number": "3701021234567890", "party_name": "王小明", "id_number": "37010219850315123X",
        "licence_file_number": "370100123456", "licence_class": "C1", "plate": "鲁A12345",
        "occurred_at": "2026-10-01 08:15", "place": "经十路与舜耕路路口", "act_code": "1344",
        "act": "机动车违反禁令标志指示", "legal_basis": "《中华人民共和国道路交通安全法》第九十条", "fine_cny": 100,
        "points": 0, "pay_by": "2026-12-14", "issuer": "济南市公安局交通警察支队历下大队",
        "payment_note": "请于15日内缴纳罚款。", "appeal_note": "如不服本决定，可在六十日内申请行政复议。"},
    "vehicle_violation_record": {"plate": "鲁A12345", "owner_name": "王小明", "vehicle": "大众 朗逸",
                                 "as_of": "2026-11-29", "count": 3, "issuer": "济南市公安局交通警察支队",
                                 "violations": VIOLATIONS},
    "safe_driving_certificate": {"name": "王小明", "id_number": "37010219850315123X",
                                 "licence_file_number": "370100123456", "licence_class": "C1",
                                 "first_issued": "2008-06-01", "licence_status": "正常", "period_from": "2023-11-29",
                                 "period_to": "2026-11-29", "violations": 0, "points": 0, "accidents": 0,
                                 "issuer": "济南市公安局交通警察支队",
                                 "statement": "经查询，王小明自2023-11-29至2026-11-29期间，交通违法0起，累计记分0分，涉及道路交通事故0起。"},
    "accident_determination": {"accident_number": "370102-2026-00123", "occurred_at": "2026-11-01 17:40",
                               "place": "泉城路与县西巷路口", "facts": "甲车变更车道时与乙车发生刮擦。",
                               "determined_on": "2026-11-10",
                               "parties": [{"name": "王小明", "plate": "鲁A12345", "liability": "全部责任"},
                                           {"name": "赵国强", "plate": "鲁A67890", "liability": "无责任"}],
                               "legal_basis": "《道路交通事故处理程序规定》第六十条",
                               "issuer": "济南市公安局交通警察支队事故处理大队"},
    "acceptance_slip": {"reference": "SL-20261129-0042", "item_name": "户口迁移申请", "applicant_name": "刘芳",
                        "submitted_at": "2026-11-29 12:00", "expected_days": 5,
                        "materials": [{"name": "居民身份证", "count": 1, "note": "原件"}]},
}

# The layouts' own key names (another backend's wording) print as well as the simulator's.
ALTERNATIVE_CONTENT: dict[str, dict[str, Any]] = {
    "traffic_violation_decision": {"decision_number": "3701021234567891", "name": "王小明",
                                   "license_number": "37010219850315123X", "plate_number": "鲁A12345",
                                   "violation_time": "2026-10-01 08:15", "violation_place": "经十路与舜耕路路口",
                                   "violation_desc": "机动车违反禁令标志指示",
                                   "legal_basis": "《中华人民共和国道路交通安全法》第九十条",
                                   "fine_yuan": 100, "points": 3},
    "kinship_certificate": {"name": "王小明", "id_number": "37010219850315123X", "relative_name": "王思琪",
                            "relative_id_number": "370102200002296780", "relationship": "父女"},
}
