"""The medical insurance platform as SSC Hub sees it: one interface, one HTTP client.

Every business call takes a `msgid` chosen by the caller. Keep it with the request before
sending: after an `InsuranceTimeout` the outcome is unknown, and resending the same msgid with
the same request returns the platform's first answer instead of doing the work twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from integrations.medical_insurance.envelope import (
    CALL_PATH,
    INFCODE_SUCCESS,
    Infno,
    MsgidSource,
    RequestEnvelope,
    ResponseEnvelope,
    format_inf_time,
    make_msgid,
)
from integrations.medical_insurance.errors import InsuranceError, InsuranceTimeout
from integrations.medical_insurance.schemas import (
    CertType,
    FeeLine,
    FeeLineResult,
    FeeUpload,
    Fen,
    Insurance,
    ItemClass,
    PersonBase,
    PersonInfo,
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
    line_amount,
)

__all__ = [
    "CertType",
    "FeeLine",
    "FeeLineResult",
    "FeeUpload",
    "Fen",
    "HttpMedicalInsurance",
    "Institution",
    "Insurance",
    "InsuranceError",
    "InsuranceTimeout",
    "ItemClass",
    "MedicalInsurance",
    "PersonBase",
    "PersonInfo",
    "PersonQuery",
    "ReconciliationRequest",
    "ReconciliationTotals",
    "RevokeRequest",
    "Settlement",
    "SettlementRequest",
    "SettlementRevocation",
    "SettlementSplit",
    "SignIn",
    "Visit",
    "VisitRegistration",
    "line_amount",
    "make_msgid",
]

M = TypeVar("M", bound=WireModel)


class Institution(BaseModel):
    """Who is calling: the designated medical institution (a unit) and its operator."""

    fixmedins_code: str
    fixmedins_name: str
    mdtrtarea_admvs: str
    """Admin division where treatment happens."""
    opter: str = "sshub"
    opter_name: str = "SSC Hub"


class MedicalInsurance(Protocol):
    """The platform's transactions, named for what they do.

    Refusals raise InsuranceError; no usable answer raises InsuranceTimeout (resend the msgid).
    """

    def new_msgid(self) -> str:
        """A fresh msgid for this institution."""
        ...

    def sign_in(self, msgid: str) -> SignIn:
        """9001: sign in for the day; later calls carry the sign_no."""
        ...

    def person_info(self, msgid: str, query: PersonQuery) -> PersonInfo:
        """1101: who the patient is and what insurance they hold."""
        ...

    def register_visit(self, msgid: str, request: VisitRegistration) -> Visit:
        """2201: open an outpatient visit; returns its mdtrt_id."""
        ...

    def upload_fees(self, msgid: str, request: FeeUpload) -> list[FeeLineResult]:
        """2204: upload the itemised bill lines of a visit."""
        ...

    def pre_settle(self, msgid: str, request: SettlementRequest) -> SettlementSplit:
        """2206: the split as it would be now; books nothing."""
        ...

    def settle(self, msgid: str, request: SettlementRequest) -> Settlement:
        """2207: book the settlement; the split may differ from the pre-settlement."""
        ...

    def revoke_settlement(self, msgid: str, request: RevokeRequest) -> SettlementRevocation:
        """2208: undo a settlement, once."""
        ...

    def reconciliation_totals(
        self, msgid: str, request: ReconciliationRequest
    ) -> ReconciliationTotals:
        """3201: compare the institution's totals for a period with the platform's."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HttpMedicalInsurance:
    """MedicalInsurance over HTTP, in the national message style.

    Signs in by itself before the first business call and again when the platform refuses
    the sign_no. Thread-safe: one instance can serve the whole hub.
    """

    def __init__(
        self,
        base_url: str,
        institution: Institution,
        *,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = _utc_now,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.institution = institution
        self._clock = clock
        self._msgids = MsgidSource(institution.fixmedins_code, clock)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self._sign_no = ""
        self._sign_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpMedicalInsurance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_msgid(self) -> str:
        return self._msgids.next()

    def sign_in(self, msgid: str) -> SignIn:
        signin = {"opter_no": self.institution.opter, "mac": "", "ip": ""}
        output = self._send(Infno.SIGN_IN, msgid, {"signIn": signin}, sign_no="")
        signed = self._read(SignIn, output, "signinoutb", Infno.SIGN_IN, msgid)
        self._sign_no = signed.sign_no
        return signed

    def person_info(self, msgid: str, query: PersonQuery) -> PersonInfo:
        output = self._call(Infno.PERSON_INFO, msgid, {"data": query.wire()})
        return self._read(PersonInfo, output, None, Infno.PERSON_INFO, msgid)

    def register_visit(self, msgid: str, request: VisitRegistration) -> Visit:
        output = self._call(Infno.REGISTER_VISIT, msgid, {"data": request.wire()}, request)
        return self._read(Visit, output, "data", Infno.REGISTER_VISIT, msgid)

    def upload_fees(self, msgid: str, request: FeeUpload) -> list[FeeLineResult]:
        output = self._call(Infno.UPLOAD_FEES, msgid, request.wire(), request)
        rows = output.get("result")
        if not isinstance(rows, list):
            raise InsuranceTimeout("answer without result", infno=Infno.UPLOAD_FEES, msgid=msgid)
        return [self._read(FeeLineResult, row, None, Infno.UPLOAD_FEES, msgid) for row in rows]

    def pre_settle(self, msgid: str, request: SettlementRequest) -> SettlementSplit:
        output = self._call(Infno.PRE_SETTLE, msgid, {"data": request.wire()}, request)
        return self._read(SettlementSplit, output, "setlinfo", Infno.PRE_SETTLE, msgid)

    def settle(self, msgid: str, request: SettlementRequest) -> Settlement:
        output = self._call(Infno.SETTLE, msgid, {"data": request.wire()}, request)
        return self._read(Settlement, output, "setlinfo", Infno.SETTLE, msgid)

    def revoke_settlement(self, msgid: str, request: RevokeRequest) -> SettlementRevocation:
        infno = Infno.REVOKE_SETTLEMENT
        output = self._call(infno, msgid, {"data": request.wire()}, request)
        return self._read(SettlementRevocation, output, "setlinfo", infno, msgid)

    def reconciliation_totals(
        self, msgid: str, request: ReconciliationRequest
    ) -> ReconciliationTotals:
        infno = Infno.RECONCILIATION_TOTALS
        output = self._call(infno, msgid, {"data": request.wire()})
        return self._read(ReconciliationTotals, output, "stmtinfo", infno, msgid)

    def _call(
        self,
        infno: Infno,
        msgid: str,
        payload: dict[str, Any],
        request: WireModel | None = None,
    ) -> dict[str, Any]:
        """Send a business message, signing in first (and once again if the platform asks)."""
        insuplc = getattr(request, "insuplc_admdvs", "")
        if not self._sign_no:
            self._sign_in_once(stale="")
        sign_no = self._sign_no
        try:
            return self._send(infno, msgid, payload, sign_no=sign_no, insuplc_admdvs=insuplc)
        except InsuranceError as refused:
            if not refused.sign_in_required:
                raise
        # The refused message did nothing, so resending it under the new sign_no is safe.
        self._sign_in_once(stale=sign_no)
        return self._send(infno, msgid, payload, sign_no=self._sign_no, insuplc_admdvs=insuplc)

    def _sign_in_once(self, stale: str) -> None:
        with self._sign_lock:
            if self._sign_no == stale:  # another thread may have signed in meanwhile
                self.sign_in(self.new_msgid())

    def _send(
        self,
        infno: Infno,
        msgid: str,
        payload: dict[str, Any],
        *,
        sign_no: str,
        insuplc_admdvs: str = "",
    ) -> dict[str, Any]:
        envelope = RequestEnvelope(
            infno=infno,
            msgid=msgid,
            mdtrtarea_admvs=self.institution.mdtrtarea_admvs,
            insuplc_admdvs=insuplc_admdvs,
            opter=self.institution.opter,
            opter_name=self.institution.opter_name,
            inf_time=format_inf_time(self._clock()),
            fixmedins_code=self.institution.fixmedins_code,
            fixmedins_name=self.institution.fixmedins_name,
            sign_no=sign_no,
            input=payload,
        )
        answer = self._post(envelope)
        if answer.infcode != INFCODE_SUCCESS:
            raise InsuranceError(answer.infcode, answer.err_msg, infno=infno, msgid=msgid)
        return answer.output

    def _post(self, envelope: RequestEnvelope) -> ResponseEnvelope:
        where = {"infno": envelope.infno, "msgid": envelope.msgid}
        try:
            response = self._http.post(CALL_PATH, content=envelope.model_dump_json())
        except httpx.TimeoutException as exc:
            raise InsuranceTimeout("timed out", **where) from exc
        except httpx.TransportError as exc:
            raise InsuranceTimeout(f"transport failed: {type(exc).__name__}", **where) from exc
        if response.status_code != httpx.codes.OK:
            raise InsuranceTimeout(f"HTTP {response.status_code}", **where)
        try:
            return ResponseEnvelope.model_validate(response.json(parse_float=Decimal))
        except (ValueError, ValidationError) as exc:
            raise InsuranceTimeout("unreadable answer", **where) from exc

    @staticmethod
    def _read(model: type[M], output: Any, key: str | None, infno: Infno, msgid: str) -> M:
        """Read an output block; an answer that does not parse or add up is no answer."""
        data = output.get(key) if key and isinstance(output, dict) else output
        try:
            return model.from_wire(data)
        except ValidationError as exc:
            reason = f"unreadable {model.__name__}: {exc.error_count()} problem(s)"
            raise InsuranceTimeout(reason, infno=infno, msgid=msgid) from exc
