"""Itemised bills from the HIS: served, generated from a seed, and refused when broken."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations.his.client import (
    Bill,
    BillNotFound,
    HisUnavailable,
    HttpHospitalInformationSystem,
    InvalidBill,
    Patient,
)
from integrations.his.simulator import DEMO_ITEMS, DEMO_PATIENTS, bill_line, generate_bill

AMOXICILLIN, CEFIXIME, VITAMIN_C = DEMO_ITEMS[1], DEMO_ITEMS[3], DEMO_ITEMS[6]
MEDICINE, DOCTOR = ("0101", "内科"), ("D0101", "刘建国")


def handmade_bill() -> Bill:
    return Bill(
        bill_no="OP20261129001",
        patient=Patient(patient_no="P0001", name="张伟", certno="330102199001011234"),
        created_at=datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
        lines=[
            bill_line(1, AMOXICILLIN, 2, MEDICINE, DOCTOR),
            bill_line(2, CEFIXIME, Decimal("0.5"), MEDICINE, DOCTOR),
            bill_line(3, VITAMIN_C, 1, MEDICINE, DOCTOR),
        ],
    )


def test_a_planted_bill_comes_back_line_for_line(his, his_control):
    his_control.add_bill(handmade_bill())
    bill = his.bill("OP20261129001")
    assert bill == handmade_bill()
    #        class  quantity        price   amount
    assert [(x.item_class, x.quantity, x.price_fen, x.amount_fen) for x in bill.lines] == [
        ("A", Decimal(2), 1_250, 2_500),
        ("B", Decimal("0.5"), 3_860, 1_930),  # 1,930 exactly: half a box
        ("C", Decimal(1), 2_800, 2_800),
    ]
    assert bill.total_fen == 7_230


def test_an_unknown_bill_is_not_found(his):
    with pytest.raises(BillNotFound):
        his.bill("OP404")


def test_without_a_seed_nothing_is_generated(start_his):
    with HttpHospitalInformationSystem(start_his(seed=None)) as his, pytest.raises(BillNotFound):
        his.bill("MZ000001")


def test_generated_bills_depend_only_on_seed_and_number(start_his):
    with (
        HttpHospitalInformationSystem(start_his(seed=7)) as one,
        HttpHospitalInformationSystem(start_his(seed=7)) as same,
        HttpHospitalInformationSystem(start_his(seed=8)) as other,
    ):
        assert one.bill("MZ000042") == same.bill("MZ000042") == generate_bill(7, "MZ000042")
        assert one.bill("MZ000042") != other.bill("MZ000042")
        assert one.bill("MZ000042") != one.bill("MZ000043")


def test_generated_bills_are_whole_and_start_with_the_consultation():
    for number in range(200):
        bill = generate_bill(7, f"MZ{number:06d}")
        assert bill.lines[0].name == "普通门诊诊查费"
        assert 2 <= len(bill.lines) <= 5
        assert bill.patient in DEMO_PATIENTS
        assert bill.total_fen == sum(line.amount_fen for line in bill.lines) > 0


def test_demo_items_are_in_the_insurance_catalogue_with_the_same_class():
    from integrations.medical_insurance.policy import DEMO_CATALOGUE, DEMO_PERSONS

    national = {item.code: item.item_class for item in DEMO_CATALOGUE}
    assert {item.national_code: item.item_class for item in DEMO_ITEMS} == national
    insured = {(p.psn_name, p.certno) for p in DEMO_PERSONS}
    assert {(p.name, p.certno) for p in DEMO_PATIENTS} == insured


def broken(change):
    raw = handmade_bill().model_dump(mode="json")
    change(raw)
    return raw


BROKEN = {
    "no lines": lambda b: b.update(lines=[]),
    "zero quantity": lambda b: b["lines"][0].update(quantity="0", amount_fen=0),
    "negative price": lambda b: b["lines"][0].update(price_fen=-1_250, amount_fen=-2_500),
    "unknown class": lambda b: b["lines"][0].update(item_class="D"),
    "amount not quantity x price": lambda b: b["lines"][0].update(amount_fen=2_499),
    "price in yuan": lambda b: b["lines"][0].update(price_fen=12.5),
    "repeated line number": lambda b: b["lines"][1].update(line_no="1"),
    "no patient": lambda b: b.pop("patient"),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_bill_is_refused_without_showing_the_patient(his, his_control, change):
    his_control.add_bill(broken(change))
    with pytest.raises(InvalidBill) as refused:
        his.bill("OP20261129001")
    assert "330102199001011234" not in str(refused.value)


def test_a_his_that_is_not_there_is_unavailable():
    his = HttpHospitalInformationSystem("http://127.0.0.1:9", timeout=0.2)
    with his, pytest.raises(HisUnavailable):
        his.bill("OP1")
