"""The platform messages of a checkout: built from its state, stored, sent, and read back.

A request is stored as its model's dump and always sent from that dump, the first time and
every time after, so a resend under the same msgid is byte-identical. HIS bill lines become
fee lines as line_no -> feedetl_sn, national_code -> med_list_codg, item_code ->
medins_list_codg, quantity -> cnt, price_fen -> pric, amount_fen -> det_item_fee_sumamt.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from hub.checkout.models import Checkout
from integrations.his.client import Bill
from integrations.medical_insurance.client import (
    CertType,
    FeeLine,
    FeeLineResult,
    FeeUpload,
    MedicalInsurance,
    PersonInfo,
    PersonQuery,
    ReconciliationRequest,
    ReconciliationTotals,
    RevokeRequest,
    Settlement,
    SettlementRequest,
    SettlementRevocation,
    SettlementSplit,
    Visit,
    VisitRegistration,
)

# The national transaction numbers the checkout sends.
SIGN_IN = "9001"
PERSON_INFO = "1101"
REGISTER_VISIT = "2201"
UPLOAD_FEES = "2204"
PRE_SETTLE = "2206"
SETTLE = "2207"
REVOKE = "2208"
RECONCILE = "3201"

REQUESTS: dict[str, type[BaseModel]] = {
    PERSON_INFO: PersonQuery,
    REGISTER_VISIT: VisitRegistration,
    UPLOAD_FEES: FeeUpload,
    PRE_SETTLE: SettlementRequest,
    SETTLE: SettlementRequest,
    REVOKE: RevokeRequest,
    RECONCILE: ReconciliationRequest,
}


class FeeResults(BaseModel):
    """2204's answer: how the platform classed each uploaded line."""

    result: list[FeeLineResult]


ANSWERS: dict[str, type[BaseModel]] = {
    PERSON_INFO: PersonInfo,
    REGISTER_VISIT: Visit,
    UPLOAD_FEES: FeeResults,
    PRE_SETTLE: SettlementSplit,
    SETTLE: Settlement,
    REVOKE: SettlementRevocation,
    RECONCILE: ReconciliationTotals,
}


def dump(model: BaseModel) -> dict[str, Any]:
    """How a request or answer is stored (JSON; money as integer fen)."""
    return model.model_dump(mode="json")


def answer_of(infno: str, stored: dict[str, Any]) -> Any:
    return ANSWERS[infno].model_validate(stored)


def send(client: MedicalInsurance, infno: str, msgid: str, stored: dict[str, Any]) -> BaseModel:
    """Send a stored request; raises InsuranceError or InsuranceTimeout as the client does."""
    request: Any = REQUESTS[infno].model_validate(stored)
    if infno == PERSON_INFO:
        return client.person_info(msgid, request)
    if infno == REGISTER_VISIT:
        return client.register_visit(msgid, request)
    if infno == UPLOAD_FEES:
        return FeeResults(result=client.upload_fees(msgid, request))
    if infno == PRE_SETTLE:
        return client.pre_settle(msgid, request)
    if infno == SETTLE:
        return client.settle(msgid, request)
    if infno == REVOKE:
        return client.revoke_settlement(msgid, request)
    if infno == RECONCILE:
        return client.reconciliation_totals(msgid, request)
    raise ValueError(f"the checkout does not send {infno}")


# ---- requests, from the checkout's state -----------------------------------------------------


def _credential(checkout: Checkout) -> tuple[CertType, str]:
    assert checkout.cert_type is not None and checkout.cert_no is not None
    return CertType(checkout.cert_type), checkout.cert_no


def person_query(checkout: Checkout) -> PersonQuery:
    cert_type, cert_no = _credential(checkout)
    return PersonQuery(
        mdtrt_cert_type=cert_type, mdtrt_cert_no=cert_no, card_sn=checkout.card_sn or ""
    )


def visit_registration(checkout: Checkout) -> VisitRegistration:
    bill = Bill.model_validate(checkout.bill)
    cert_type, cert_no = _credential(checkout)
    first = bill.lines[0]
    assert checkout.psn_no and checkout.insutype and checkout.insured_division is not None
    return VisitRegistration(
        insuplc_admdvs=checkout.insured_division,
        psn_no=checkout.psn_no,
        insutype=checkout.insutype,
        begntime=bill.created_at,
        mdtrt_cert_type=cert_type,
        mdtrt_cert_no=cert_no,
        card_sn=checkout.card_sn or "",
        ipt_otp_no=bill.bill_no,
        atddr_no=first.doctor_code,
        dr_name=first.doctor_name,
        dept_code=first.dept_code,
        dept_name=first.dept_name,
    )


def fee_upload(checkout: Checkout) -> FeeUpload:
    bill = Bill.model_validate(checkout.bill)
    assert checkout.mdtrt_id and checkout.psn_no and checkout.chrg_bchno
    assert checkout.insured_division is not None
    lines = [
        FeeLine(
            feedetl_sn=line.line_no,
            mdtrt_id=checkout.mdtrt_id,
            psn_no=checkout.psn_no,
            chrg_bchno=checkout.chrg_bchno,
            fee_ocur_time=bill.created_at,
            med_list_codg=line.national_code,
            medins_list_codg=line.item_code,
            cnt=line.quantity,
            pric=line.price_fen,
            det_item_fee_sumamt=line.amount_fen,
            bilg_dept_codg=line.dept_code,
            bilg_dept_name=line.dept_name,
            bilg_dr_codg=line.doctor_code,
            bilg_dr_name=line.doctor_name,
        )
        for line in bill.lines
    ]
    return FeeUpload(insuplc_admdvs=checkout.insured_division, feedetail=lines)


def settlement_request(checkout: Checkout) -> SettlementRequest:
    """The one request that pre-settles (2206) and settles (2207) the bill."""
    cert_type, cert_no = _credential(checkout)
    assert checkout.psn_no and checkout.insutype and checkout.mdtrt_id and checkout.chrg_bchno
    assert checkout.insured_division is not None
    return SettlementRequest(
        insuplc_admdvs=checkout.insured_division,
        psn_no=checkout.psn_no,
        mdtrt_cert_type=cert_type,
        mdtrt_cert_no=cert_no,
        med_type=checkout.med_type,
        medfee_sumamt=checkout.medfee,
        mdtrt_id=checkout.mdtrt_id,
        chrg_bchno=checkout.chrg_bchno,
        insutype=checkout.insutype,
        acct_used_flag="1",
    )


def revoke_request(checkout: Checkout) -> RevokeRequest:
    assert checkout.setl_id and checkout.mdtrt_id and checkout.psn_no
    return RevokeRequest(
        insuplc_admdvs=checkout.insured_division or "",
        setl_id=checkout.setl_id,
        mdtrt_id=checkout.mdtrt_id,
        psn_no=checkout.psn_no,
    )
