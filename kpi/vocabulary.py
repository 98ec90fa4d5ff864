"""The words esco-kpi shares with portals, analysts and itself: one definition each.

The collector validates events with them, the OpenAPI description lists them, the indicators
check filters against them and the dashboard offers them in its menus. Change one here and
every part follows.
"""

from __future__ import annotations

import re

# ESCO's 28 languages (ISO 639-1), in ESCO's order: what `language` may be in an event, the
# language filter, and the language columns of ESCO's download files.
LANGUAGES: tuple[str, ...] = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "is",
    "it", "lt", "lv", "mt", "nl", "no", "pl", "pt", "ro", "sk", "sl", "sv", "uk", "ar",
)

# The kinds of implementer, recorded when one is registered.
SECTORS: tuple[str, ...] = (
    "pes",
    "private_employment",
    "job_portal",
    "education_training",
    "public_authority",
    "other",
)

EVENT_TYPES: tuple[str, ...] = (
    "concept_used", "label_added", "concept_proposed", "translation_feedback",
)

# Where in a portal a concept was used.
CONTEXTS: tuple[str, ...] = (
    "job_vacancy", "cv", "search", "matching", "training", "statistics", "other",
)

# What a concept_proposed event may propose (its `concept_type` field).
EVENT_CONCEPT_TYPES: tuple[str, ...] = ("occupation", "skill", "qualification")

# The types of the catalogue's concepts, as ESCO's download files give them; also the values
# of the concept_type filter, which applies to the catalogue's type of a used concept and to the
# proposed type of a proposal.
CONCEPT_TYPES: tuple[str, ...] = ("occupation", "skill", "qualification", "isco", "skill_group")

# Patterns are anchored, for the OpenAPI description (JSON Schema patterns are not), and always
# used with fullmatch in Python, where "$" alone would also match before a trailing newline.

# ISO 3166-1 alpha-2, upper case.
COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
# A few user-assigned and exceptional codes are accepted too: XK (Kosovo), EU, EL (Greece, as
# Eurostat writes it) and UK appear in European statistics.
COUNTRIES: frozenset[str] = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
XK EU EL UK
""".split())

ESCO_URI_PREFIX = "http://data.europa.eu/esco/"
# An ESCO concept URI as events name it (skill groups' URIs are under /skill/); ECMA-compatible.
CONCEPT_URI = re.compile(
    r"^http://data\.europa\.eu/esco/(occupation|skill|isco|qualification)/[A-Za-z0-9._-]{1,100}$"
)

# The outcome and reason of a counted event with a problem: its named ESCO release is loaded
# but lacks its concept (the data-quality counters, written by the collector and by replay).
FLAGGED, ESCO_VERSION_MISMATCH = "flagged", "esco_version_mismatch"
