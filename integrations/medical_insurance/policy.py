"""The simulated platform's rules: who is insured, what the catalogue covers, how a bill splits.

All of it is configuration (a `PlatformConfig`, loadable from YAML or JSON) plus one pure
function, `split_bill`, so the same numbers come out every time. Money is integer fen; ratios
are basis points (6000 = 60%) and round half up to the fen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field

from integrations.medical_insurance.schemas import ItemClass

_BP = 10_000


def share(amount: int, bp: int) -> int:
    """`bp` basis points of `amount` fen, rounded half up."""
    return (amount * bp + _BP // 2) // _BP


class CatalogueItem(BaseModel):
    """An entry of the national catalogue: its class decides coverage."""

    code: str
    name: str
    item_class: Literal["A", "B", "C"]
    selfpay_bp: int | None = Field(default=None, ge=0, le=_BP)
    """Class B self-paid share for this item; the policy's default when not given."""

    @property
    def chrgitm_lv(self) -> ItemClass:
        return ItemClass[self.item_class]


class InsuredPerson(BaseModel):
    """A person the platform knows, with this year's running totals."""

    psn_no: str
    psn_name: str
    certno: str
    """Resident ID number: credential 02."""
    gend: str = "1"
    brdy: date
    insutype: str = "310"
    """310 employees' basic medical insurance (with a personal account), 390 residents'."""
    psn_type: str = "11"
    insuplc_admdvs: str
    card_no: str = ""
    """Social security card number: credential 03, with `card_sn`."""
    card_sn: str = ""
    """Card identification code (the chip's)."""
    ecard_token: str = ""
    """Medical insurance e-voucher token: credential 01."""
    account_balance_fen: int = Field(default=0, ge=0)
    deductible_used_fen: int = Field(default=0, ge=0)
    fund_paid_fen: int = Field(default=0, ge=0)


class PlatformConfig(BaseModel):
    """Everything the simulated platform decides by."""

    admvs: str = "330100"
    """The platform's own admin division; it stamps inf_refmsgid and setl_id."""
    serial_start: int = Field(default=0, ge=0)
    """Where the serial in sign_no, mdtrt_id and setl_id starts: a real platform never issues
    an id twice, so the simulator's own process starts past its earlier runs (see simulator)."""
    catalogue: list[CatalogueItem] = []
    persons: list[InsuredPerson] = []
    hospital_levels: dict[str, int] = {}
    """Institution code -> hospital level 1, 2 or 3."""
    default_hospital_level: int | None = 2
    """Level of institutions not listed; None refuses them."""
    deductible_fen: int = Field(default=5_000, ge=0)
    """Yearly deductible per person, paid before the pooled fund pays."""
    class_b_selfpay_bp: int = Field(default=1_000, ge=0, le=_BP)
    reimbursement_bp: dict[str, dict[int, int]] = {
        "11": {1: 7_000, 2: 6_000, 3: 5_000},  # general outpatient
        "14": {1: 8_500, 2: 8_000, 3: 7_500},  # chronic and special outpatient
        "21": {1: 9_000, 2: 8_500, 3: 8_000},  # inpatient
    }
    """Medical type -> hospital level -> share of the pooled part the fund pays."""
    annual_cap_fen: int = Field(default=30_000_000, ge=0)
    """Most the pooled fund pays for one person in a year."""
    account_pays_class_c: bool = False
    """Whether the personal account may pay class C (self-pay) items."""
    yuan_on_wire: Literal["number", "string"] = "number"
    require_sign_in: bool = True

    def item(self, code: str) -> CatalogueItem | None:
        return next((item for item in self.catalogue if item.code == code), None)

    def ratio_bp(self, med_type: str, level: int) -> int | None:
        return self.reimbursement_bp.get(med_type, {}).get(level)


def load_config(path: Path) -> PlatformConfig:
    """Read a PlatformConfig from a YAML or JSON file."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return PlatformConfig.model_validate(data)


@dataclass(frozen=True)
class LineShare:
    """How one bill line falls under the catalogue."""

    item_class: ItemClass
    amount: int
    selfpay_bp: int
    fulamt_ownpay: int
    preselfpay: int

    @property
    def in_scope(self) -> int:
        return self.amount - self.fulamt_ownpay - self.preselfpay


def class_line(item: CatalogueItem, amount: int, config: PlatformConfig) -> LineShare:
    """Class A is all in scope, B less its self-paid share, C all self-paid."""
    if item.item_class == "C":
        return LineShare(ItemClass.C, amount, _BP, amount, 0)
    if item.item_class == "B":
        bp = config.class_b_selfpay_bp if item.selfpay_bp is None else item.selfpay_bp
        return LineShare(ItemClass.B, amount, bp, 0, share(amount, bp))
    return LineShare(ItemClass.A, amount, 0, 0, 0)


@dataclass(frozen=True)
class PersonYear:
    """Where the person stands this year before the settlement."""

    deductible_used: int
    fund_paid: int
    account_balance: int


@dataclass(frozen=True)
class Split:
    """The settlement's numbers, in fen."""

    medfee: int
    fulamt_ownpay: int
    preselfpay: int
    in_scope: int
    deductible: int
    pooled_selfpay: int
    fund: int
    personal_part: int
    account: int
    cash: int
    balance_after: int


def split_bill(
    lines: Sequence[LineShare],
    ratio_bp: int,
    person: PersonYear,
    config: PlatformConfig,
    use_account: bool,
) -> Split:
    """Split a bill: deductible first, then the fund's ratio up to the annual cap, then the
    personal account for what it may pay of the patient's part, and cash for the rest."""
    medfee = sum(line.amount for line in lines)
    fulamt_ownpay = sum(line.fulamt_ownpay for line in lines)
    preselfpay = sum(line.preselfpay for line in lines)
    in_scope = sum(line.in_scope for line in lines)
    deductible = min(in_scope, max(0, config.deductible_fen - person.deductible_used))
    pooled = in_scope - deductible
    cap_left = max(0, config.annual_cap_fen - person.fund_paid)
    fund = min(share(pooled, ratio_bp), cap_left)
    personal_part = medfee - fund
    account_may_pay = personal_part - (0 if config.account_pays_class_c else fulamt_ownpay)
    account = min(person.account_balance, max(0, account_may_pay)) if use_account else 0
    cash = personal_part - account
    if medfee != fund + account + cash:  # by construction; kept as the platform's own check
        raise AssertionError("split does not add up")
    return Split(
        medfee=medfee,
        fulamt_ownpay=fulamt_ownpay,
        preselfpay=preselfpay,
        in_scope=in_scope,
        deductible=deductible,
        pooled_selfpay=pooled - fund,
        fund=fund,
        personal_part=personal_part,
        account=account,
        cash=cash,
        balance_after=person.account_balance - account,
    )


def demo_config() -> PlatformConfig:
    """The demo district: the demo cardholders, a small catalogue, default rules."""
    return PlatformConfig(catalogue=DEMO_CATALOGUE, persons=DEMO_PERSONS)


DEMO_CATALOGUE = [
    CatalogueItem(code="001102000010000", name="普通门诊诊查费", item_class="A"),
    CatalogueItem(code="XJ01CAA040A001010100001", name="阿莫西林胶囊", item_class="A"),
    CatalogueItem(code="002501010150000", name="血细胞分析", item_class="A"),
    CatalogueItem(code="XJ01DDC060A001010100002", name="头孢克肟分散片", item_class="B"),
    CatalogueItem(code="ZA12GAF0330010103000003", name="复方丹参滴丸", item_class="B"),
    CatalogueItem(
        code="002206000010000", name="彩色多普勒超声检查", item_class="B", selfpay_bp=2_000
    ),
    CatalogueItem(code="XA11GAV000A001010100003", name="维生素C泡腾片", item_class="C"),
    CatalogueItem(code="003111000010000", name="健康体检套餐", item_class="C"),
]

# The hub's demo cardholders (hub/demo/seed.py), as the platform knows them.
DEMO_PERSONS = [
    InsuredPerson(
        psn_no="33010000000000000001",
        psn_name="张伟",
        certno="330102199001011234",
        brdy=date(1990, 1, 1),
        insuplc_admdvs="330100",
        card_no="K10000001",
        card_sn="3301000000001A",
        ecard_token="ECT330100ZHANGWEI0000000000000001",
        account_balance_fen=3_000,
    ),
    InsuredPerson(
        psn_no="33010000000000000002",
        psn_name="王芳",
        certno="330102198505052345",
        gend="2",
        brdy=date(1985, 5, 5),
        insuplc_admdvs="330100",
        card_no="K10000002",
        card_sn="3301000000002B",
        ecard_token="ECT330100WANGFANG0000000000000002",
        account_balance_fen=50_000,
        deductible_used_fen=5_000,
    ),
    InsuredPerson(
        psn_no="33010000000000000003",
        psn_name="李娜",
        certno="33010219700707345X",
        gend="2",
        brdy=date(1970, 7, 7),
        insutype="390",
        psn_type="21",
        insuplc_admdvs="330100",
        card_no="K10000003",
        card_sn="3301000000003C",
        ecard_token="ECT330100LINA000000000000000000003",
    ),
]
