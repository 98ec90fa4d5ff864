"""collector.privacy.personal_data_reason: what looks like personal data, and what must pass."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.privacy import personal_data_reason

EMAIL = "looks like an e-mail address"
PHONE = "looks like a phone number"
URL = "looks like a URL"
IBAN = "looks like an IBAN"
DIGITS = "contains a run of 6 or more digits"

FAST = settings(max_examples=300, deadline=None, database=None)


@pytest.mark.parametrize(("text", "reason"), [
    ("jane.doe@example.org", EMAIL),
    ("write to max+jobs@mail.example.co.uk please", EMAIL),
    ("Contact: j_smith@uni-bonn.de", EMAIL),
    ("<ana@correo.es>", EMAIL),
    ("call +49 30 1234567", PHONE),
    ("+33 1 23 45 67 89", PHONE),
    ("+1 (555) 010-9999", PHONE),
    ("0044 20 7946 0958", PHONE),
    ("030 1234567", PHONE),
    ("030-123-4567", PHONE),
    ("0171.234.5678", PHONE),
    ("(030) 123 45 67", PHONE),
    ("(212) 555-0123", PHONE),
    ("tel 06 12 34 56 78", PHONE),
    ("see https://example.org/cv", URL),
    ("http://localhost:8080", URL),
    ("www.example.org", URL),
    ("ftp://files.example.net/x", URL),
    ("example.org/jobs/123", URL),
    ("DE89370400440532013000", IBAN),
    ("DE89 3704 0044 0532 0130 00", IBAN),
    ("GB82 WEST 1234 5698 7654 32", IBAN),
    ("GB82WEST12345698765432", IBAN),
    ("pay to FR14 2004 1010 0505 0001 3M02 606", IBAN),
    ("customer 123456", DIGITS),
    ("ref 1234567", DIGITS),
    ("order 20261125001", PHONE),
])
def test_personal_data_is_flagged(text, reason):
    assert personal_data_reason(text) == reason


@pytest.mark.parametrize("text", [
    "ISO 9001:2015 auditing",
    "ISO 27001 2013 controls", "Node.js", "ASP.NET", "C++", "Java SE 17", "5G networks",
    "use 3D printing", "1990s music", "IPv6", "SAP S/4HANA", "Windows 11", "B2B sales",
    "first aid level 3", "HTML5", "COVID-19 measures", "ISO/IEC 27001:2022", "IEC 61131-3",
    "EN 1090-2", "Excel 2016/2019", "Python 3.12", "ITIL v4", "ISO 14001", "Vue.js",
    "GB82 WEST is a sort code format",
    "C# .NET", "A1 driving licence", "Industry 4.0", "R&D management", "24/7 support",
    "Betriebswirt/-in (IHK)", "e-mail marketing", "@-mentions in social media",
])
def test_esco_like_labels_pass(text):
    assert personal_data_reason(text) is None


def test_iban_with_wrong_check_digits_is_not_an_iban():
    assert personal_data_reason("GB82WEST12345698765433") != IBAN


@given(st.text(max_size=1000))
@FAST
def test_never_raises_on_any_text(text):
    assert personal_data_reason(text) in (None, EMAIL, PHONE, URL, IBAN, DIGITS)


@given(st.text(max_size=100), st.emails(), st.text(max_size=100))
@FAST
def test_text_with_an_email_address_is_flagged(before, address, after):
    assert personal_data_reason(f"{before}{address}{after}") == EMAIL
    assert personal_data_reason(f"{before} {address} {after}") == EMAIL


@pytest.mark.parametrize("text", [
    "1." * 500, "a." * 500, "a@" * 500, "0 " * 500, "+" + "1-" * 499, "x" * 1000,
    "a@b." + "c." * 498, "www." + "." * 996, "DE" + "1 " * 499,
])
def test_worst_case_text_is_fast(text):
    started = time.perf_counter()
    personal_data_reason(text)
    assert time.perf_counter() - started < 0.5
