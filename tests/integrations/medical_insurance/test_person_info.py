"""1101: a patient is found by e-voucher token, ID number or social security card."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integrations.medical_insurance.client import CertType, InsuranceError, PersonQuery

from .conftest import LI_NA, WANG_FANG, ZHANG_WEI


def ask(insurance, cert_type, cert_no, card_sn=""):
    query = PersonQuery(mdtrt_cert_type=cert_type, mdtrt_cert_no=cert_no, card_sn=card_sn)
    return insurance.person_info(insurance.new_msgid(), query)


@pytest.mark.parametrize(
    ("cert_type", "cert_no", "card_sn", "psn_no"),
    [
        (CertType.E_VOUCHER, "ECT330100ZHANGWEI0000000000000001", "", ZHANG_WEI),
        (CertType.ID_NUMBER, "330102198505052345", "", WANG_FANG),
        (CertType.SOCIAL_SECURITY_CARD, "K10000003", "3301000000003C", LI_NA),
    ],
)
def test_each_credential_finds_its_person(insurance, cert_type, cert_no, card_sn, psn_no):
    assert ask(insurance, cert_type, cert_no, card_sn).baseinfo.psn_no == psn_no


def test_person_info_carries_insurance_and_account_balance(insurance):
    info = ask(insurance, CertType.ID_NUMBER, "330102199001011234")
    assert (info.baseinfo.psn_name, info.baseinfo.certno) == ("张伟", "330102199001011234")
    held = info.insurance()
    assert (held.insutype, held.balc, held.insuplc_admdvs) == ("310", 3_000, "330100")


def test_residents_insurance_has_no_account(insurance):
    info = ask(insurance, CertType.ID_NUMBER, "33010219700707345X")
    assert (info.insurance().insutype, info.insurance().balc) == ("390", 0)
    with pytest.raises(LookupError):
        info.insurance("310")


def test_unknown_person_is_refused(insurance):
    with pytest.raises(InsuranceError) as refused:
        ask(insurance, CertType.ID_NUMBER, "110101200001010000")
    assert (refused.value.infcode, refused.value.err_msg) == (-1, "person not found")
    assert "110101200001010000" not in str(refused.value)  # no ID number in the message


def test_a_replaced_card_is_refused_by_its_identification_code(insurance):
    with pytest.raises(InsuranceError, match="identification code does not match"):
        ask(insurance, CertType.SOCIAL_SECURITY_CARD, "K10000003", "3301000000009Z")


def test_a_card_query_without_identification_code_is_not_sent():
    with pytest.raises(ValidationError, match="card_sn"):
        PersonQuery(mdtrt_cert_type=CertType.SOCIAL_SECURITY_CARD, mdtrt_cert_no="K10000003")
