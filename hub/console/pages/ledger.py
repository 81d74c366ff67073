"""The ledger as bank staff read it: an account's balance and history, a transfer's legs."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.console.auth import db_of, page
from hub.console.models import Role
from hub.console.rendering import ConsoleRoute, NavItem, redirect, register_nav, render
from hub.console.service import Signed
from hub.db import Cursor, PathId
from hub.errors import HubError
from hub.ledger import service as ledger
from hub.ledger.errors import LedgerError

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("ledger", "Ledger", "/console/ledger", Role.VIEWER, "Money"))
PAGE_SIZE = 50
FLAG_NAMES = {1: "hold", 2: "post hold", 4: "void hold", 8: "linked"}


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


@router.get("/ledger")
def ledger_home(
    request: Request,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    account: Annotated[str, Query(max_length=32)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    owner: Annotated[str, Query(max_length=64)] = "",
    reference: Annotated[str, Query(max_length=128)] = "",
    check: bool = False,
    after: Cursor = 0,
) -> Response:
    """Look up an account by number or by kind and owner, or transfers by reference; or check
    the books (every invariant of the ledger, over the whole database). Below, the accounts
    (of one kind, when a kind alone is given) in number order, a page at a time."""
    errors: dict[str, str] = {}
    legs: list[object] = []
    problems: list[str] | None = None
    listed_kind = kind.strip() if kind.strip() and not owner.strip() else None
    with db_of(request).session() as s:
        accounts, next_after = ledger.list_accounts(s, listed_kind, after, PAGE_SIZE)
        rows = [(a, ledger.balance(a)) for a in accounts]
        if check:
            problems = ledger.check_invariants(s)
        if account.strip():
            if account.strip().isdigit():
                return redirect(request, f"/console/ledger/accounts/{int(account)}")
            errors["account"] = "an account number is digits only"
        if kind.strip() and owner.strip():
            found = ledger.find_account(s, kind.strip(), owner.strip())
            if found is not None:
                return redirect(request, f"/console/ledger/accounts/{found.id}")
            errors["owner"] = f"no {kind.strip()} account for {owner.strip()}"
        if reference.strip():
            legs = list(ledger.transfers_for(s, reference.strip()))
            if not legs:
                errors["reference"] = "no transfer carries this reference"
    return render(
        request,
        "ledger.html",
        {
            "active": "ledger",
            "errors": errors,
            "legs": legs,
            "problems": problems,
            "flag_names": flag_names,
            "q": {"account": account, "kind": kind, "owner": owner, "reference": reference},
            "accounts": rows,
            "listed_kind": listed_kind,
            "next_accounts": _accounts_page(listed_kind, next_after),
            "first_accounts": _accounts_page(listed_kind, 0) if after else None,
        },
        422 if errors else 200,
    )


def _accounts_page(kind: str | None, after: int | None) -> str | None:
    if after is None:
        return None
    query = {"kind": kind} if kind else {}
    return "/console/ledger?" + urlencode({**query, "after": after}) + "#accounts"


@router.get("/ledger/accounts/{account_id}")
def account_page(
    request: Request,
    account_id: PathId,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    cursor: Cursor = 0,
) -> Response:
    with db_of(request).session() as s:
        try:
            account = ledger.get_account(s, account_id)
        except LedgerError as exc:
            raise HubError("account_not_found", f"no account {account_id}", 404) from exc
        transfers, next_cursor = ledger.account_transfers(s, account_id, cursor, PAGE_SIZE)
        return render(
            request,
            "ledger_account.html",
            {
                "active": "ledger",
                "account": account,
                "balance": ledger.balance(account),
                "transfers": transfers,
                "next_cursor": next_cursor,
                "cursor": cursor,
                "flag_names": flag_names,
            },
        )


@router.get("/ledger/transfers/{transfer_id}")
def transfer_page(
    request: Request, transfer_id: str, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    with db_of(request).session() as s:
        try:
            transfer = ledger.get_transfer(s, transfer_id)
        except LedgerError as exc:
            raise HubError("transfer_not_found", "no such transfer", 404) from exc
        debit = ledger.get_account(s, transfer.debit_account_id)
        credit = ledger.get_account(s, transfer.credit_account_id)
        related = [
            t for t in ledger.transfers_for(s, transfer.reference or "") if t.id != transfer.id
        ]
        return render(
            request,
            "ledger_transfer.html",
            {
                "active": "ledger",
                "t": transfer,
                "debit": debit,
                "credit": credit,
                "related": related,
                "flag_names": flag_names,
            },
        )
