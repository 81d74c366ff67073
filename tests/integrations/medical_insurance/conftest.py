"""A simulated platform per test, reached only through the real HTTP client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from fastapi import FastAPI

from integrations.medical_insurance.client import (
    CertType,
    FeeLine,
    FeeLineResult,
    FeeUpload,
    HttpMedicalInsurance,
    Institution,
    PersonInfo,
    PersonQuery,
    RevokeRequest,
    Settlement,
    SettlementRequest,
    Visit,
    VisitRegistration,
)
from integrations.medical_insurance.platform import InsurancePlatform
from integrations.medical_insurance.policy import PlatformConfig, demo_config
from integrations.medical_insurance.simulator import SimulatorControl, create_app

HOSPITAL = Institution(
    fixmedins_code="H33010200001",
    fixmedins_name="杭州市上城区人民医院",
    mdtrtarea_admvs="330102",
    opter="C001",
    opter_name="收费员一",
)
CLINIC = Institution(
    fixmedins_code="H33010200002",
    fixmedins_name="上城区社区卫生服务中心",
    mdtrtarea_admvs="330102",
)
ZHANG_WEI = "33010000000000000001"  # account 30.00, no deductible used yet
WANG_FANG = "33010000000000000002"  # account 500.00, deductible already used
LI_NA = "33010000000000000003"  # residents' insurance, no personal account


def hospital_config(**changes: object) -> PlatformConfig:
    """The demo platform with the test hospital at level 2 and the clinic at level 1."""
    config = demo_config().model_copy(
        update={"hospital_levels": {HOSPITAL.fixmedins_code: 2, CLINIC.fixmedins_code: 1}}
    )
    return config.model_copy(update=changes)


class Simulated:
    """One running simulator: its URL, the platform inside, and a way to make clients."""

    def __init__(self, url: str, platform: InsurancePlatform, clock: Callable[[], datetime]):
        self.url = url
        self.platform = platform
        self.clock = clock
        self._control: SimulatorControl | None = None
        self._clients: list[HttpMedicalInsurance] = []

    @property
    def control(self) -> SimulatorControl:
        """The admin client, made on first use (each httpx client costs an SSL context)."""
        if self._control is None:
            self._control = SimulatorControl(self.url)
        return self._control

    def client(
        self, institution: Institution = HOSPITAL, timeout: float = 5.0, url: str | None = None
    ) -> HttpMedicalInsurance:
        made = HttpMedicalInsurance(url or self.url, institution, timeout=timeout, clock=self.clock)
        self._clients.append(made)
        return made

    def close(self) -> None:
        for made in self._clients:
            made.close()
        if self._control is not None:
            self._control.close()


@pytest.fixture
def simulate(serve: Callable[[FastAPI], str], clock) -> Iterator[Callable[..., Simulated]]:
    """Start a simulator with a given config and faults."""
    started: list[Simulated] = []

    def start(config: PlatformConfig | None = None, faults=()) -> Simulated:
        platform = InsurancePlatform(config or hospital_config(), faults)
        sim = Simulated(serve(create_app(platform)), platform, clock)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


@pytest.fixture
def sim(simulate: Callable[..., Simulated]) -> Simulated:
    return simulate()


@pytest.fixture
def insurance(sim: Simulated) -> HttpMedicalInsurance:
    return sim.client()


CONSULTATION = "001102000010000"  # class A
AMOXICILLIN = "XJ01CAA040A001010100001"  # class A
CEFIXIME = "XJ01DDC060A001010100002"  # class B, 10% self-paid
ULTRASOUND = "002206000010000"  # class B, 20% self-paid
VITAMIN_C = "XA11GAV000A001010100003"  # class C


class Cashier:
    """What the hub's checkout will do, step by step, through the client interface."""

    def __init__(self, insurance: HttpMedicalInsurance, clock: Callable[[], datetime]) -> None:
        self.insurance = insurance
        self.clock = clock

    def identify(self, psn_no: str) -> PersonInfo:
        certno = next(p.certno for p in demo_config().persons if p.psn_no == psn_no)
        query = PersonQuery(mdtrt_cert_type=CertType.ID_NUMBER, mdtrt_cert_no=certno)
        return self.insurance.person_info(self.insurance.new_msgid(), query)

    def open_visit(self, person: PersonInfo, ipt_otp_no: str) -> Visit:
        request = VisitRegistration(
            insuplc_admdvs=person.insurance().insuplc_admdvs,
            psn_no=person.baseinfo.psn_no,
            insutype=person.insurance().insutype,
            begntime=self.clock(),
            mdtrt_cert_type=CertType.ID_NUMBER,
            mdtrt_cert_no=person.baseinfo.certno,
            ipt_otp_no=ipt_otp_no,
            dept_code="0101",
            dept_name="内科",
        )
        return self.insurance.register_visit(self.insurance.new_msgid(), request)

    def fee_lines(
        self, visit: Visit, lines: list[tuple[str, int, int]], chrg_bchno: str = "CB1"
    ) -> list[FeeLine]:
        """(national code, quantity, unit price in fen) -> fee lines numbered from 1."""
        return [
            FeeLine(
                feedetl_sn=f"{chrg_bchno}-{n}",
                mdtrt_id=visit.mdtrt_id,
                psn_no=visit.psn_no,
                chrg_bchno=chrg_bchno,
                fee_ocur_time=self.clock(),
                med_list_codg=code,
                medins_list_codg=f"H-{code[:6]}",
                cnt=Decimal(cnt),
                pric=price,
                det_item_fee_sumamt=cnt * price,
                bilg_dept_codg="0101",
                bilg_dept_name="内科",
                bilg_dr_codg="D0101",
                bilg_dr_name="刘建国",
            )
            for n, (code, cnt, price) in enumerate(lines, 1)
        ]

    def upload(
        self, visit: Visit, lines: list[tuple[str, int, int]], chrg_bchno: str = "CB1"
    ) -> list[FeeLineResult]:
        upload = FeeUpload(feedetail=self.fee_lines(visit, lines, chrg_bchno))
        return self.insurance.upload_fees(self.insurance.new_msgid(), upload)

    def settlement_request(
        self,
        person: PersonInfo,
        visit: Visit,
        medfee_fen: int,
        chrg_bchno: str = "CB1",
        use_account: bool = True,
        med_type: str = "11",
    ) -> SettlementRequest:
        return SettlementRequest(
            insuplc_admdvs=person.insurance().insuplc_admdvs,
            psn_no=person.baseinfo.psn_no,
            mdtrt_cert_type=CertType.ID_NUMBER,
            mdtrt_cert_no=person.baseinfo.certno,
            med_type=med_type,
            medfee_sumamt=medfee_fen,
            mdtrt_id=visit.mdtrt_id,
            chrg_bchno=chrg_bchno,
            insutype=person.insurance().insutype,
            acct_used_flag="1" if use_account else "0",
        )

    def ready_to_settle(
        self, psn_no: str, lines: list[tuple[str, int, int]], ipt_otp_no: str = "MZ000001"
    ) -> SettlementRequest:
        """Identify, register and upload: everything up to the settlement itself."""
        person = self.identify(psn_no)
        visit = self.open_visit(person, ipt_otp_no)
        self.upload(visit, lines)
        return self.settlement_request(person, visit, sum(c * p for _, c, p in lines))

    def revoke_request(self, settlement: Settlement) -> RevokeRequest:
        return RevokeRequest(
            setl_id=settlement.setl_id, mdtrt_id=settlement.mdtrt_id, psn_no=settlement.psn_no
        )


@pytest.fixture
def cashier(insurance: HttpMedicalInsurance, clock) -> Cashier:
    return Cashier(insurance, clock)
