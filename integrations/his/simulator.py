"""The hospital information system simulator: serves itemised bills over HTTP.

Bills come from three places: given to the constructor, posted to `/admin/bills` as raw JSON
(stored as sent, so a test can plant a broken bill), or, when a seed is set, generated on first
request for any number like `MZ000123`, the same bill for the same seed and number every time.
Run with `python -m integrations.his.simulator --port 8702 --seed 7`.
"""

from __future__ import annotations

import argparse
import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import httpx
import uvicorn
from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import JSONResponse

from integrations.his.schemas import Bill, BillLine, Patient, line_amount

DEFAULT_PORT = 8702
GENERATED_BILL_NO = re.compile(r"MZ\d{6,}")
_GENERATED_FROM = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # 09:00 in China


@dataclass(frozen=True)
class HisItem:
    """An item of the hospital's price list, mapped to the national catalogue."""

    item_code: str
    national_code: str
    name: str
    item_class: Literal["A", "B", "C"]
    price_fen: int


CONSULTATION = HisItem("ZL0001", "001102000010000", "普通门诊诊查费", "A", 1_000)
DEMO_ITEMS = [
    CONSULTATION,
    HisItem("YP0101", "XJ01CAA040A001010100001", "阿莫西林胶囊 0.25g×24粒", "A", 1_250),
    HisItem("JY0201", "002501010150000", "血细胞分析(血常规)", "A", 2_000),
    HisItem("YP0102", "XJ01DDC060A001010100002", "头孢克肟分散片 0.1g×6片", "B", 3_860),
    HisItem("YP0301", "ZA12GAF0330010103000003", "复方丹参滴丸 27mg×180丸", "B", 2_650),
    HisItem("JC0301", "002206000010000", "彩色多普勒超声检查", "B", 12_000),
    HisItem("YP0901", "XA11GAV000A001010100003", "维生素C泡腾片 1g×10片", "C", 2_800),
    HisItem("TJ0001", "003111000010000", "健康体检套餐", "C", 15_000),
]
# Department code and name, with its doctors' codes and names.
DEMO_DEPARTMENTS = [
    ("0101", "内科", [("D0101", "刘建国"), ("D0102", "陈静")]),
    ("0201", "外科", [("D0201", "赵强")]),
    ("0301", "儿科", [("D0301", "孙丽"), ("D0302", "周敏")]),
]
# The demo cardholders as the hospital knows them.
DEMO_PATIENTS = [
    Patient(patient_no="P0001", name="张伟", certno="330102199001011234"),
    Patient(patient_no="P0002", name="王芳", certno="330102198505052345"),
    Patient(patient_no="P0003", name="李娜", certno="33010219700707345X"),
]


def bill_line(
    line_no: int,
    item: HisItem,
    quantity: int | Decimal,
    dept: tuple[str, str],
    doctor: tuple[str, str],
) -> BillLine:
    """A bill line for `quantity` of `item`, its amount worked out from the price list."""
    count = Decimal(quantity)
    return BillLine(
        line_no=str(line_no),
        item_code=item.item_code,
        national_code=item.national_code,
        name=item.name,
        item_class=item.item_class,
        quantity=count,
        price_fen=item.price_fen,
        amount_fen=line_amount(count, item.price_fen),
        dept_code=dept[0],
        dept_name=dept[1],
        doctor_code=doctor[0],
        doctor_name=doctor[1],
    )


def generate_bill(seed: int, bill_no: str) -> Bill:
    """A plausible outpatient bill, the same for the same seed and bill number."""
    rng = random.Random(f"{seed}:{bill_no}")
    dept_code, dept_name, doctors = rng.choice(DEMO_DEPARTMENTS)
    dept, doctor = (dept_code, dept_name), rng.choice(doctors)
    extras = rng.sample(DEMO_ITEMS[1:], k=rng.randint(1, 4))
    lines = [bill_line(1, CONSULTATION, 1, dept, doctor)] + [
        bill_line(n, item, rng.randint(1, 3), dept, doctor) for n, item in enumerate(extras, 2)
    ]
    return Bill(
        bill_no=bill_no,
        patient=rng.choice(DEMO_PATIENTS),
        created_at=_GENERATED_FROM + timedelta(minutes=rng.randrange(8 * 60)),
        lines=lines,
    )


class HisSimulator:
    """The HIS's bills: stored as JSON exactly as they will be served."""

    def __init__(self, bills: Iterable[Bill] = (), seed: int | None = None) -> None:
        self.seed = seed
        self._bills: dict[str, Any] = {b.bill_no: b.model_dump(mode="json") for b in bills}
        self._lock = threading.Lock()

    def add_raw(self, raw: dict[str, Any]) -> None:
        """Store a bill as given, checked or not (tests plant broken bills this way)."""
        with self._lock:
            self._bills[str(raw["bill_no"])] = raw

    def lookup(self, bill_no: str) -> Any | None:
        with self._lock:
            if bill_no not in self._bills and self._generates(bill_no):
                self._bills[bill_no] = generate_bill(self.seed or 0, bill_no).model_dump(
                    mode="json"
                )
            return self._bills.get(bill_no)

    def _generates(self, bill_no: str) -> bool:
        return self.seed is not None and GENERATED_BILL_NO.fullmatch(bill_no) is not None


def create_app(his: HisSimulator) -> FastAPI:
    """The simulator's HTTP face over `his`."""
    app = FastAPI(title="Hospital information system (simulated)", docs_url=None, redoc_url=None)
    app.state.his = his

    @app.get("/bills/{bill_no}")
    def bill(bill_no: str) -> JSONResponse:
        raw = his.lookup(bill_no)
        if raw is None:
            raise HTTPException(status_code=404, detail="no such bill")
        return JSONResponse(raw)

    @app.post("/admin/bills", status_code=204)
    def add_bill(raw: Annotated[dict[str, Any], Body()]) -> None:
        if "bill_no" not in raw:
            raise HTTPException(status_code=422, detail="a bill needs bill_no")
        his.add_raw(raw)

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    seed: int | None = 7,
    bills: Iterable[Bill] = (),
) -> None:
    """Serve the simulator until interrupted."""
    app = create_app(HisSimulator(bills, seed))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


class HisControl:
    """Plants bills in the simulator from a test or a demo script."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=5.0)

    def close(self) -> None:
        self._http.close()

    def add_bill(self, bill: Bill | dict[str, Any]) -> None:
        raw = bill.model_dump(mode="json") if isinstance(bill, Bill) else bill
        self._http.post("/admin/bills", json=raw).raise_for_status()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Simulated hospital information system.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=7, help="seed for generated MZ bills")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.seed)


if __name__ == "__main__":
    main()
