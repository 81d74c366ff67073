"""The simulated platform's state and transactions, with no HTTP in it.

`InsurancePlatform.receive` takes a request envelope's bytes and returns the answer, after
applying any injected fault. Successful answers are kept by msgid: the same msgid with the
same content gets the first answer again, so a caller's retry never books twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from integrations.medical_insurance.envelope import (
    INFCODE_FAILURE,
    INFCODE_SUCCESS,
    Infno,
    RequestEnvelope,
    parse_inf_time,
    parse_msgid,
)
from integrations.medical_insurance.errors import DUPLICATE_MSGID, SIGN_IN_REQUIRED
from integrations.medical_insurance.policy import (
    InsuredPerson,
    LineShare,
    PersonYear,
    PlatformConfig,
    Split,
    class_line,
    demo_config,
    split_bill,
)
from integrations.medical_insurance.schemas import (
    CertType,
    FeeLineResult,
    FeeUpload,
    Insurance,
    PersonBase,
    PersonQuery,
    ReconciliationRequest,
    ReconciliationTotals,
    RevokeRequest,
    Settlement,
    SettlementRequest,
    SettlementRevocation,
    SettlementSplit,
    SignIn,
    Visit,
    VisitRegistration,
    WireModel,
)

M = TypeVar("M", bound=WireModel)
Output = dict[str, Any]


class Refusal(Exception):
    """The platform says no: answered with infcode -1 and this err_msg."""


class Fault(BaseModel):
    """A misbehaviour to inject into the next `times` messages of `infno` ("*" for any).

    timeout: hold the message `hold_seconds` and do nothing (the caller times out first).
    timeout_after: do the work, then hold the answer (the work is done, the answer lost).
    error: refuse with infcode -1 and `err_msg`, doing nothing.
    duplicate_msgid: refuse as though the msgid had been used before, doing nothing.
    """

    kind: Literal["timeout", "timeout_after", "error", "duplicate_msgid"]
    infno: str = "*"
    times: int = Field(default=1, ge=1)
    err_msg: str = "platform busy (injected)"
    hold_seconds: float = Field(default=1.0, ge=0)


@dataclass
class Outcome:
    """The answer to send and how long to sit on it first."""

    answer: Output
    hold_seconds: float = 0.0


class BookedSettlement(BaseModel):
    """A settlement as the platform's books hold it; a revoke marks it, never deletes it."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    chrg_bchno: str
    fixmedins_code: str
    insutype: str
    day: date
    medfee_fen: int
    fund_fen: int
    account_fen: int
    cash_fen: int
    deductible_fen: int
    revoke_setl_id: str | None = None
    revoke_day: date | None = None


@dataclass
class VisitState:
    mdtrt_id: str
    psn_no: str
    ipt_otp_no: str
    insutype: str
    fixmedins_code: str
    lines: dict[str, tuple[str, LineShare]] = field(default_factory=dict)
    """feedetl_sn -> (charge batch, how the line falls under the catalogue)."""
    settled: dict[str, str] = field(default_factory=dict)
    """charge batch -> setl_id of its settlement in force."""


class InsurancePlatform:
    """A deterministic medical insurance platform: configure it, then feed it messages."""

    def __init__(self, config: PlatformConfig | None = None, faults: Iterable[Fault] = ()) -> None:
        self.config = config or demo_config()
        self.persons = {p.psn_no: p.model_copy() for p in self.config.persons}
        self.settlements: dict[str, BookedSettlement] = {}
        self._faults = [fault.model_copy() for fault in faults]
        self._visits: dict[str, VisitState] = {}
        self._answers: dict[str, tuple[str, Output]] = {}
        self._sign_nos: set[str] = set()
        self._serial = self.config.serial_start
        self._lock = threading.RLock()
        self._handlers: dict[str, Callable[[RequestEnvelope, datetime], Output]] = {
            Infno.SIGN_IN: self._sign_in,
            Infno.PERSON_INFO: self._person_info,
            Infno.REGISTER_VISIT: self._register_visit,
            Infno.UPLOAD_FEES: self._upload_fees,
            Infno.PRE_SETTLE: self._pre_settle,
            Infno.SETTLE: self._settle,
            Infno.REVOKE_SETTLEMENT: self._revoke,
            Infno.RECONCILIATION_TOTALS: self._reconcile,
        }

    # ---- faults and the books, for tests and the admin endpoints ----

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault.model_copy())

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def forget_settlement(self, setl_id: str) -> None:
        """Lose a settlement, as if the platform never booked it (for reconciliation tests)."""
        with self._lock:
            booked = self.settlements.pop(setl_id)
            self._visits[booked.mdtrt_id].settled.pop(booked.chrg_bchno, None)

    def amend_settlement(
        self, setl_id: str, fund_fen: int, account_fen: int, cash_fen: int
    ) -> None:
        """Change a booked settlement's amounts (for reconciliation tests)."""
        with self._lock:
            booked = self.settlements[setl_id]
            booked.fund_fen, booked.account_fen, booked.cash_fen = fund_fen, account_fen, cash_fen
            booked.medfee_fen = fund_fen + account_fen + cash_fen

    def booked_settlements(self) -> list[BookedSettlement]:
        with self._lock:
            return [booked.model_copy() for booked in self.settlements.values()]

    def person(self, psn_no: str) -> InsuredPerson:
        """A copy of the person as the platform holds them now; KeyError when unknown."""
        with self._lock:
            return self.persons[psn_no].model_copy()

    def set_account_balance(self, psn_no: str, balance_fen: int) -> None:
        """Change a personal account balance (as the account's own movements would)."""
        with self._lock:
            self.persons[psn_no].account_balance_fen = balance_fen

    def expire_sign_ins(self) -> None:
        """Forget every sign_no, as a platform does overnight or after a restart."""
        with self._lock:
            self._sign_nos.clear()

    # ---- messages ----

    def receive(self, body: bytes) -> Outcome:
        """Answer one request envelope, applying the next matching fault."""
        with self._lock:
            try:
                envelope = RequestEnvelope.model_validate(json.loads(body, parse_float=Decimal))
            except (ValueError, ValidationError):
                return Outcome(self._refusal("malformed message", None))
            fault = self._take_fault(envelope.infno)
            if fault is not None and fault.kind != "timeout_after":
                return self._fault_outcome(fault, envelope)
            answer = self._answer(envelope)
            return Outcome(answer, fault.hold_seconds if fault else 0.0)

    def _take_fault(self, infno: str) -> Fault | None:
        for fault in self._faults:
            if fault.infno in ("*", infno):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_outcome(self, fault: Fault, envelope: RequestEnvelope) -> Outcome:
        if fault.kind == "timeout":
            return Outcome(self._refusal("answer withheld", envelope), fault.hold_seconds)
        if fault.kind == "duplicate_msgid":
            return Outcome(self._refusal(f"{DUPLICATE_MSGID} {envelope.msgid}", envelope))
        return Outcome(self._refusal(fault.err_msg, envelope))

    def _answer(self, envelope: RequestEnvelope) -> Output:
        fingerprint = envelope.infno + json.dumps(envelope.input, sort_keys=True, default=str)
        seen = self._answers.get(envelope.msgid)
        if seen is not None:
            first_fingerprint, first_answer = seen
            if first_fingerprint == fingerprint:
                return first_answer
            err = f"{DUPLICATE_MSGID} {envelope.msgid} with different content"
            return self._refusal(err, envelope)
        try:
            at = self._check_envelope(envelope)
            output = self._handlers[envelope.infno](envelope, at)
        except Refusal as refusal:
            return self._refusal(str(refusal), envelope)
        answer = self._success(output, envelope)
        self._answers[envelope.msgid] = (fingerprint, answer)
        return answer

    def _check_envelope(self, envelope: RequestEnvelope) -> datetime:
        try:
            parse_msgid(envelope.msgid, envelope.fixmedins_code)
            at = parse_inf_time(envelope.inf_time)
        except ValueError as exc:
            raise Refusal(f"envelope not valid: {exc}") from None
        if envelope.infno not in self._handlers:
            raise Refusal(f"transaction {envelope.infno} not offered")
        self._hospital_level(envelope.fixmedins_code)
        if (
            self.config.require_sign_in
            and envelope.infno != Infno.SIGN_IN
            and envelope.sign_no not in self._sign_nos
        ):
            raise Refusal(f"{SIGN_IN_REQUIRED}: sign in again")
        return at

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _success(self, output: Output, envelope: RequestEnvelope) -> Output:
        return {
            "infcode": INFCODE_SUCCESS,
            "inf_refmsgid": self._refmsgid(envelope),
            "refmsg_time": envelope.inf_time,
            "respond_time": envelope.inf_time,
            "err_msg": "",
            "warn_msg": "",
            "output": output,
        }

    def _refusal(self, err_msg: str, envelope: RequestEnvelope | None) -> Output:
        return {
            "infcode": INFCODE_FAILURE,
            "inf_refmsgid": self._refmsgid(envelope),
            "refmsg_time": envelope.inf_time if envelope else "",
            "respond_time": envelope.inf_time if envelope else "",
            "err_msg": err_msg,
            "warn_msg": "",
            "output": {},
        }

    def _refmsgid(self, envelope: RequestEnvelope | None) -> str:
        stamp = envelope.inf_time if envelope else ""
        digits = "".join(ch for ch in stamp if ch.isdigit()).ljust(14, "0")[:14]
        return f"{self.config.admvs}{digits}{self._next_serial():010d}"

    def _hospital_level(self, fixmedins_code: str) -> int:
        level = self.config.hospital_levels.get(fixmedins_code, self.config.default_hospital_level)
        if level is None:
            raise Refusal("institution is not a designated medical institution")
        return level

    def _wire(self, model: WireModel) -> Output:
        return model.wire(self.config.yuan_on_wire)

    # ---- 9001, 1101 ----

    def _sign_in(self, envelope: RequestEnvelope, at: datetime) -> Output:
        sign_no = f"{self.config.admvs}{at:%Y%m%d}{self._next_serial():010d}"
        self._sign_nos.add(sign_no)
        return {"signinoutb": self._wire(SignIn(sign_no=sign_no, sign_time=at))}

    def _person_info(self, envelope: RequestEnvelope, at: datetime) -> Output:
        query = _parse(PersonQuery, envelope.input.get("data"))
        person = self._find_person(query.mdtrt_cert_type, query.mdtrt_cert_no, query.card_sn)
        base = PersonBase(
            psn_no=person.psn_no,
            psn_cert_type="01",
            certno=person.certno,
            psn_name=person.psn_name,
            gend=person.gend,
            brdy=person.brdy,
        )
        insurance = Insurance(
            insutype=person.insutype,
            psn_type=person.psn_type,
            balc=person.account_balance_fen,
            psn_insu_stas="1",
            insuplc_admdvs=person.insuplc_admdvs,
        )
        return {"baseinfo": self._wire(base), "insuinfo": [self._wire(insurance)], "idetinfo": []}

    def _find_person(
        self, cert_type: CertType, cert_no: str, card_sn: str | None = None
    ) -> InsuredPerson:
        for person in self.persons.values():
            if cert_type is CertType.E_VOUCHER and person.ecard_token == cert_no:
                return person
            if cert_type is CertType.ID_NUMBER and person.certno == cert_no:
                return person
            if cert_type is CertType.SOCIAL_SECURITY_CARD and person.card_no == cert_no:
                if card_sn is not None and card_sn != person.card_sn:
                    raise Refusal("card identification code does not match the card")
                return person
        raise Refusal("person not found")

    def _person(self, psn_no: str) -> InsuredPerson:
        person = self.persons.get(psn_no)
        if person is None:
            raise Refusal("person not found")
        return person

    # ---- 2201, 2204 ----

    def _register_visit(self, envelope: RequestEnvelope, at: datetime) -> Output:
        request = _parse(VisitRegistration, envelope.input.get("data"))
        card_sn = request.card_sn or None
        holder = self._find_person(request.mdtrt_cert_type, request.mdtrt_cert_no, card_sn)
        if holder.psn_no != request.psn_no:
            raise Refusal("credential does not belong to psn_no")
        if request.insutype != holder.insutype:
            raise Refusal("the person holds no insurance of that insutype")
        if any(
            v.ipt_otp_no == request.ipt_otp_no and v.fixmedins_code == envelope.fixmedins_code
            for v in self._visits.values()
        ):
            raise Refusal("outpatient number already registered")
        mdtrt_id = f"{self.config.admvs}{at:%Y%m%d}{self._next_serial():010d}"
        self._visits[mdtrt_id] = VisitState(
            mdtrt_id, holder.psn_no, request.ipt_otp_no, holder.insutype, envelope.fixmedins_code
        )
        visit = Visit(mdtrt_id=mdtrt_id, psn_no=holder.psn_no, ipt_otp_no=request.ipt_otp_no)
        return {"data": self._wire(visit)}

    def _visit(self, envelope: RequestEnvelope, mdtrt_id: str, psn_no: str) -> VisitState:
        visit = self._visits.get(mdtrt_id)
        if visit is None or visit.fixmedins_code != envelope.fixmedins_code:
            raise Refusal("visit not found")
        if visit.psn_no != psn_no:
            raise Refusal("visit belongs to another person")
        return visit

    def _upload_fees(self, envelope: RequestEnvelope, at: datetime) -> Output:
        upload = _parse(FeeUpload, envelope.input)
        staged: list[tuple[VisitState, str, str, LineShare]] = []
        for line in upload.feedetail:
            visit = self._visit(envelope, line.mdtrt_id, line.psn_no)
            if line.chrg_bchno in visit.settled:
                raise Refusal(f"charge batch {line.chrg_bchno} already settled")
            already = visit.lines.keys() | {sn for v, sn, _, _ in staged if v is visit}
            if line.feedetl_sn in already:
                raise Refusal(f"fee line {line.feedetl_sn} already uploaded")
            item = self.config.item(line.med_list_codg)
            if item is None:
                raise Refusal(f"item {line.med_list_codg} not in the catalogue")
            share = class_line(item, line.det_item_fee_sumamt, self.config)
            staged.append((visit, line.feedetl_sn, line.chrg_bchno, share))
        results = []
        for visit, feedetl_sn, chrg_bchno, share in staged:  # all lines or none
            visit.lines[feedetl_sn] = (chrg_bchno, share)
            results.append(self._wire(_line_result(feedetl_sn, share)))
        return {"result": results}

    # ---- 2206, 2207, 2208 ----

    def _split(
        self, envelope: RequestEnvelope, request: SettlementRequest
    ) -> tuple[VisitState, InsuredPerson, Split]:
        visit = self._visit(envelope, request.mdtrt_id, request.psn_no)
        person = self._find_person(request.mdtrt_cert_type, request.mdtrt_cert_no)
        if person.psn_no != request.psn_no:
            raise Refusal("credential does not belong to psn_no")
        if request.insutype != visit.insutype:
            raise Refusal("insutype differs from the visit's")
        if request.chrg_bchno in visit.settled:
            raise Refusal(f"charge batch {request.chrg_bchno} already settled")
        lines = [share for batch, share in visit.lines.values() if batch == request.chrg_bchno]
        if not lines:
            raise Refusal(f"no fee details uploaded for charge batch {request.chrg_bchno}")
        if request.medfee_sumamt != sum(line.amount for line in lines):
            raise Refusal("medfee_sumamt differs from the uploaded fee details")
        ratio = self.config.ratio_bp(request.med_type, self._hospital_level(visit.fixmedins_code))
        if ratio is None:
            raise Refusal(f"med_type {request.med_type} not covered")
        standing = PersonYear(
            person.deductible_used_fen, person.fund_paid_fen, person.account_balance_fen
        )
        use_account = request.acct_used_flag == "1"
        return visit, person, split_bill(lines, ratio, standing, self.config, use_account)

    def _setlinfo(
        self, request: SettlementRequest, person: InsuredPerson, split: Split, at: datetime
    ) -> dict[str, Any]:
        return {
            "mdtrt_id": request.mdtrt_id,
            "psn_no": person.psn_no,
            "psn_name": person.psn_name,
            "med_type": request.med_type,
            "insutype": request.insutype,
            "medfee_sumamt": split.medfee,
            "fulamt_ownpay_amt": split.fulamt_ownpay,
            "preselfpay_amt": split.preselfpay,
            "inscp_scp_amt": split.in_scope,
            "act_pay_dedc": split.deductible,
            "hifp_pay": split.fund,
            "pool_prop_selfpay": split.pooled_selfpay,
            "fund_pay_sumamt": split.fund,
            "psn_part_amt": split.personal_part,
            "acct_pay": split.account,
            "psn_cash_pay": split.cash,
            "balc": split.balance_after,
            "setl_time": at,
        }

    def _pre_settle(self, envelope: RequestEnvelope, at: datetime) -> Output:
        request = _parse(SettlementRequest, envelope.input.get("data"))
        _, person, split = self._split(envelope, request)
        setlinfo = SettlementSplit.model_validate(self._setlinfo(request, person, split, at))
        return {"setlinfo": self._wire(setlinfo), "setldetail": []}

    def _settle(self, envelope: RequestEnvelope, at: datetime) -> Output:
        request = _parse(SettlementRequest, envelope.input.get("data"))
        visit, person, split = self._split(envelope, request)
        setl_id = f"{self.config.admvs}{at:%Y%m%d}{self._next_serial():010d}"
        person.account_balance_fen -= split.account
        person.deductible_used_fen += split.deductible
        person.fund_paid_fen += split.fund
        visit.settled[request.chrg_bchno] = setl_id
        self.settlements[setl_id] = BookedSettlement(
            setl_id=setl_id,
            mdtrt_id=visit.mdtrt_id,
            psn_no=person.psn_no,
            chrg_bchno=request.chrg_bchno,
            fixmedins_code=envelope.fixmedins_code,
            insutype=request.insutype,
            day=at.date(),
            medfee_fen=split.medfee,
            fund_fen=split.fund,
            account_fen=split.account,
            cash_fen=split.cash,
            deductible_fen=split.deductible,
        )
        settlement = Settlement.model_validate(
            {**self._setlinfo(request, person, split, at), "setl_id": setl_id}
        )
        return {"setlinfo": self._wire(settlement), "setldetail": []}

    def _revoke(self, envelope: RequestEnvelope, at: datetime) -> Output:
        request = _parse(RevokeRequest, envelope.input.get("data"))
        booked = self.settlements.get(request.setl_id)
        if booked is None or booked.fixmedins_code != envelope.fixmedins_code:
            raise Refusal("settlement not found")
        if (booked.mdtrt_id, booked.psn_no) != (request.mdtrt_id, request.psn_no):
            raise Refusal("settlement does not match mdtrt_id and psn_no")
        if booked.revoke_setl_id is not None:
            raise Refusal("settlement already revoked")
        person = self._person(booked.psn_no)
        person.account_balance_fen += booked.account_fen
        person.deductible_used_fen -= booked.deductible_fen
        person.fund_paid_fen -= booked.fund_fen
        booked.revoke_setl_id = f"{self.config.admvs}{at:%Y%m%d}{self._next_serial():010d}"
        booked.revoke_day = at.date()
        self._visits[booked.mdtrt_id].settled.pop(booked.chrg_bchno, None)
        revocation = SettlementRevocation(
            setl_id=booked.revoke_setl_id,
            mdtrt_id=booked.mdtrt_id,
            psn_no=booked.psn_no,
            medfee_sumamt=-booked.medfee_fen,
            fund_pay_sumamt=-booked.fund_fen,
            psn_part_amt=-(booked.account_fen + booked.cash_fen),
            acct_pay=-booked.account_fen,
            psn_cash_pay=-booked.cash_fen,
            balc=person.account_balance_fen,
            setl_time=at,
        )
        return {"setlinfo": self._wire(revocation)}

    # ---- 3201 ----

    def _reconcile(self, envelope: RequestEnvelope, at: datetime) -> Output:
        request = _parse(ReconciliationRequest, envelope.input.get("data"))
        totals = {"medfee": 0, "fund": 0, "account": 0, "cash": 0, "count": 0}
        for booked in self.settlements.values():
            if booked.fixmedins_code != envelope.fixmedins_code:
                continue
            if request.insutype and booked.insutype != request.insutype:
                continue
            if request.stmt_begndate <= booked.day <= request.stmt_enddate:
                _add(totals, booked, +1)
            day = booked.revoke_day
            if day is not None and request.stmt_begndate <= day <= request.stmt_enddate:
                _add(totals, booked, -1)
        theirs = {
            "medfee": request.medfee_sumamt,
            "fund": request.fund_pay_sumamt,
            "account": request.acct_pay,
            "count": request.fixmedins_setl_cnt,
        }
        differing = [name for name, value in theirs.items() if totals[name] != value]
        stmt = ReconciliationTotals(
            setl_optins=request.setl_optins,
            stmt_rslt="1" if differing else "0",
            stmt_rslt_dscr=("differs: " + ", ".join(differing)) if differing else "balanced",
            medfee_sumamt=totals["medfee"],
            fund_pay_sumamt=totals["fund"],
            acct_pay=totals["account"],
            psn_cash_pay=totals["cash"],
            fixmedins_setl_cnt=totals["count"],
        )
        return {"stmtinfo": self._wire(stmt)}


def _add(totals: dict[str, int], booked: BookedSettlement, sign: int) -> None:
    totals["medfee"] += sign * booked.medfee_fen
    totals["fund"] += sign * booked.fund_fen
    totals["account"] += sign * booked.account_fen
    totals["cash"] += sign * booked.cash_fen
    totals["count"] += sign


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.from_wire(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'input'}: {error['msg']}"
            for error in exc.errors()
        )
        raise Refusal(f"input not valid: {problems}") from None


def _line_result(feedetl_sn: str, share: LineShare) -> FeeLineResult:
    return FeeLineResult(
        feedetl_sn=feedetl_sn,
        det_item_fee_sumamt=share.amount,
        chrgitm_lv=share.item_class,
        selfpay_prop=Decimal(share.selfpay_bp) / 10_000,
        fulamt_ownpay_amt=share.fulamt_ownpay,
        preselfpay_amt=share.preselfpay,
        inscp_scp_amt=share.in_scope,
    )
