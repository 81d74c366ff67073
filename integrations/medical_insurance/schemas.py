"""Typed models of each transaction's input and output, with money as integer fen.

Field names are the platform's own, so a model reads like the interface specification. The
same model is used on both sides: `wire()` writes the platform's form (yuan, its time format)
and `from_wire()` reads it; in Python, and in `model_dump_json()` for keeping a request to
resend, amounts are fen.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    Strict,
    ValidationInfo,
    model_validator,
)

from integrations.medical_insurance.amounts import fen_to_yuan, yuan_to_fen
from integrations.medical_insurance.envelope import format_inf_time, parse_inf_time

YuanStyle = Literal["string", "number"]


def _on_wire(context: Any) -> bool:
    """Whether (de)serialisation is for the platform's wire, not for Python or storage."""
    return isinstance(context, dict) and bool(context.get("wire"))


def _fen_from_wire(value: Any, info: ValidationInfo) -> Any:
    return yuan_to_fen(value) if _on_wire(info.context) else value


def _fen_to_wire(fen: int, info: SerializationInfo) -> Any:
    if not _on_wire(info.context):
        return fen
    yuan = fen_to_yuan(fen)
    return float(yuan) if info.context == {"wire": "number"} else str(yuan)


def _time_from_wire(value: Any, info: ValidationInfo) -> Any:
    if _on_wire(info.context) and isinstance(value, str):
        return parse_inf_time(value)
    return value


def _time_to_wire(at: datetime, info: SerializationInfo) -> Any:
    if _on_wire(info.context):
        return format_inf_time(at)
    return at.isoformat() if info.mode == "json" else at


Fen = Annotated[int, Strict(), BeforeValidator(_fen_from_wire), PlainSerializer(_fen_to_wire)]
"""Money: integer fen in Python, yuan with two decimals on the wire."""

InfTime = Annotated[datetime, BeforeValidator(_time_from_wire), PlainSerializer(_time_to_wire)]
"""A moment: an aware datetime in Python, "yyyy-MM-dd HH:mm:ss" China time on the wire."""


def line_amount(cnt: Decimal, pric: int) -> int:
    """A fee line's amount in fen: quantity times unit price, rounded half up to the fen."""
    return int((cnt * pric).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class WireModel(BaseModel):
    """A transaction's data; `envelope_fields` travel in the envelope, not in `input`."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    envelope_fields: ClassVar[frozenset[str]] = frozenset()

    def wire(self, yuan: YuanStyle = "string") -> dict[str, Any]:
        """This model in the platform's form, amounts as yuan strings or numbers."""
        return self.model_dump(
            mode="json", context={"wire": yuan}, exclude=set(self.envelope_fields)
        )

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        """Read the platform's form; raises pydantic.ValidationError on anything malformed."""
        return cls.model_validate(data, context={"wire": True})


class PersonScoped(WireModel):
    """A request about one insured person, routed by where they are insured."""

    envelope_fields: ClassVar[frozenset[str]] = frozenset({"insuplc_admdvs"})

    insuplc_admdvs: str = ""
    """Insured place (admin division), from `person_info`; goes in the envelope."""


class CertType(StrEnum):
    """How the patient proves who they are (mdtrt_cert_type)."""

    E_VOUCHER = "01"  # e-voucher token from the medical insurance QR code
    ID_NUMBER = "02"  # resident identity card number
    SOCIAL_SECURITY_CARD = "03"  # card number, with the card identification code in card_sn


class ItemClass(StrEnum):
    """Catalogue class of a billed item (chrgitm_lv): how much insurance covers."""

    A = "01"  # fully in scope
    B = "02"  # in scope after a self-paid share
    C = "03"  # self-pay


# ---- 9001 sign-in -------------------------------------------------------------------------


class SignIn(WireModel):
    """The day's sign-in: every later message carries `sign_no`."""

    sign_no: str
    sign_time: InfTime


# ---- 1101 person information --------------------------------------------------------------


class PersonQuery(WireModel):
    """Look a patient up by e-voucher token, ID number or social security card."""

    mdtrt_cert_type: CertType
    mdtrt_cert_no: str = Field(min_length=1)
    card_sn: str = ""
    """Card identification code; required with the social security card."""
    psn_name: str = ""

    @model_validator(mode="after")
    def _card_needs_identification_code(self) -> Self:
        if self.mdtrt_cert_type is CertType.SOCIAL_SECURITY_CARD and not self.card_sn:
            raise ValueError("a social security card query needs card_sn")
        return self


class PersonBase(WireModel):
    psn_no: str
    psn_cert_type: str
    certno: str
    psn_name: str
    gend: str
    brdy: date


class Insurance(WireModel):
    """One insurance the person holds; `balc` is the personal account balance."""

    insutype: str
    psn_type: str
    balc: Fen
    psn_insu_stas: str
    insuplc_admdvs: str


class PersonInfo(WireModel):
    baseinfo: PersonBase
    insuinfo: list[Insurance]

    def insurance(self, insutype: str | None = None) -> Insurance:
        """The insurance in force (psn_insu_stas 1), of `insutype` when given."""
        for row in self.insuinfo:
            if row.psn_insu_stas == "1" and insutype in (None, row.insutype):
                return row
        raise LookupError("the person has no insurance in force of that type")


# ---- 2201 outpatient registration --------------------------------------------------------


class VisitRegistration(PersonScoped):
    psn_no: str
    insutype: str
    begntime: InfTime
    mdtrt_cert_type: CertType
    mdtrt_cert_no: str
    card_sn: str = ""
    ipt_otp_no: str
    """The hospital's outpatient number for this visit (the HIS bill number)."""
    atddr_no: str = ""
    dr_name: str = ""
    dept_code: str = ""
    dept_name: str = ""
    caty: str = ""


class Visit(WireModel):
    mdtrt_id: str
    psn_no: str
    ipt_otp_no: str


# ---- 2204 fee-detail upload --------------------------------------------------------------


class FeeLine(WireModel):
    """One itemised line of the bill, in the platform's words."""

    feedetl_sn: str
    mdtrt_id: str
    psn_no: str
    chrg_bchno: str
    """Charge batch: the lines pre-settled and settled together."""
    fee_ocur_time: InfTime
    med_list_codg: str
    """National catalogue code; the platform's catalogue decides the class."""
    medins_list_codg: str
    cnt: Decimal = Field(gt=0)
    pric: Annotated[Fen, Field(gt=0)]
    det_item_fee_sumamt: Fen
    bilg_dept_codg: str = ""
    bilg_dept_name: str = ""
    bilg_dr_codg: str = ""
    bilg_dr_name: str = ""
    hosp_appr_flag: str = "1"

    @model_validator(mode="after")
    def _amount_is_quantity_times_price(self) -> Self:
        if self.det_item_fee_sumamt != line_amount(self.cnt, self.pric):
            raise ValueError("det_item_fee_sumamt is not cnt x pric")
        return self


class FeeUpload(PersonScoped):
    feedetail: list[FeeLine] = Field(min_length=1)


class FeeLineResult(WireModel):
    """How the platform classed one uploaded line."""

    feedetl_sn: str
    det_item_fee_sumamt: Fen
    chrgitm_lv: ItemClass
    selfpay_prop: Decimal
    fulamt_ownpay_amt: Fen
    preselfpay_amt: Fen
    inscp_scp_amt: Fen
    overlmt_amt: Fen = 0


# ---- 2206 pre-settlement, 2207 settlement, 2208 revoke -----------------------------------


class SettlementRequest(PersonScoped):
    """The same request pre-settles (2206) and settles (2207) a charge batch."""

    psn_no: str
    mdtrt_cert_type: CertType
    mdtrt_cert_no: str
    med_type: str
    """Medical type: 11 general outpatient, 14 chronic/special outpatient, ..."""
    medfee_sumamt: Fen
    psn_setlway: str = "01"
    mdtrt_id: str
    chrg_bchno: str
    insutype: str
    acct_used_flag: Literal["0", "1"] = "1"
    """1: the personal account pays what it may of the patient's part."""


class SplitAmounts(WireModel):
    """Who pays what: the fund, the personal account and the patient's cash."""

    medfee_sumamt: Fen
    fund_pay_sumamt: Fen
    psn_part_amt: Fen
    acct_pay: Fen
    psn_cash_pay: Fen

    @model_validator(mode="after")
    def _split_adds_up(self) -> Self:
        if self.medfee_sumamt != self.fund_pay_sumamt + self.acct_pay + self.psn_cash_pay:
            raise ValueError("medfee_sumamt != fund_pay_sumamt + acct_pay + psn_cash_pay")
        if self.psn_part_amt != self.acct_pay + self.psn_cash_pay:
            raise ValueError("psn_part_amt != acct_pay + psn_cash_pay")
        return self


class SettlementSplit(SplitAmounts):
    """A pre-settlement: the split as it would be now; nothing is booked."""

    mdtrt_id: str
    psn_no: str
    psn_name: str
    med_type: str
    insutype: str
    fulamt_ownpay_amt: Fen
    """Class C items, all self-paid."""
    overlmt_selfpay: Fen = 0
    preselfpay_amt: Fen
    """Class B items' self-paid share."""
    inscp_scp_amt: Fen
    """In scope: class A plus class B less its self-paid share."""
    act_pay_dedc: Fen
    """Deductible paid by the patient in this settlement."""
    hifp_pay: Fen
    """Basic medical insurance pooled fund."""
    pool_prop_selfpay: Fen
    """The patient's co-payment share of the pooled part (and anything above the annual cap)."""
    balc: Fen
    """Personal account balance after this settlement."""
    setl_time: InfTime


class Settlement(SettlementSplit):
    """A settlement the platform has booked."""

    setl_id: str


class RevokeRequest(PersonScoped):
    setl_id: str
    mdtrt_id: str
    psn_no: str


class SettlementRevocation(SplitAmounts):
    """The revoke record: amounts are the settlement's, negated; `setl_id` is the revoke's own."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    balc: Fen
    setl_time: InfTime


# ---- 3201 reconciliation totals ----------------------------------------------------------


class ReconciliationRequest(WireModel):
    """The institution's own totals for a period; the platform says whether they agree.

    Counts and amounts are net: a revoke takes its settlement out on the revoke's own day.
    """

    stmt_begndate: date
    stmt_enddate: date
    medfee_sumamt: Fen
    fund_pay_sumamt: Fen
    acct_pay: Fen
    fixmedins_setl_cnt: int
    insutype: str = ""
    clr_type: str = ""
    setl_optins: str = ""


class ReconciliationTotals(WireModel):
    """The platform's verdict and, beyond the national output, its own totals."""

    setl_optins: str = ""
    stmt_rslt: Literal["0", "1"]
    """0: the totals agree; 1: they do not."""
    stmt_rslt_dscr: str = ""
    medfee_sumamt: Fen
    fund_pay_sumamt: Fen
    acct_pay: Fen
    psn_cash_pay: Fen
    fixmedins_setl_cnt: int

    @property
    def balanced(self) -> bool:
        return self.stmt_rslt == "0"
