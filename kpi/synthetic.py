"""Realistic synthetic usage over the real catalogue, for the demo, the tests and benchmarks.

Usage is Zipf-distributed over concepts; implementers differ by country, sector and language;
portals add labels, propose concepts, send feedback on translations, send late and duplicate
events, and now and then something invalid. Everything is seeded: the same seed gives the same
events, with the same ids.

The free text is real language material, not invented phrases (see DemoWordings): labels that a
later ESCO release added to a concept, older ESCO wordings that portals still show, one form of
a gendered preferred label, the catalogue's own labels written differently, and as translation
feedback a newer release's wording or the concept's own alternative label.

The demo's traffic also carries planted trends (DEMO_TRENDS): a skill whose use rises in every
country, an occupation whose use fades, and a proposal that spreads from portal to portal, so
that the trend indicator has something true to find; everything else is stationary.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, select

from kpi.catalogue.load import current_version
from kpi.store.db import concept_labels, concepts


@dataclass(frozen=True)
class Profile:
    """A demo implementer: who it is and which languages its users write in."""

    name: str
    country: str
    sector: str
    languages: tuple[str, ...]
    volume: float  # relative share of the traffic


DEMO_IMPLEMENTERS: tuple[Profile, ...] = (
    Profile("Jobbörse Nord", "DE", "job_portal", ("de", "en"), 3.0),
    Profile("Agentur für Arbeit Demo", "DE", "pes", ("de",), 2.5),
    Profile("Weiterbildung Süd", "DE", "education_training", ("de",), 1.0),
    Profile("France Emploi Démo", "FR", "pes", ("fr",), 2.0),
    Profile("Talents Paris", "FR", "job_portal", ("fr", "en"), 1.5),
    Profile("Portal de Empleo Demo", "ES", "job_portal", ("es",), 1.5),
    Profile("Servizio Lavoro Demo", "IT", "pes", ("it",), 1.0),
    Profile("Werk Portaal NL", "NL", "private_employment", ("nl", "en"), 1.2),
    Profile("Praca Demo", "PL", "job_portal", ("pl",), 1.0),
    Profile("Työ Demo", "FI", "pes", ("fi", "sv"), 0.6),
    Profile("EU Skills Academy", "BE", "education_training", ("en", "fr", "nl"), 0.8),
    Profile("Careers Ireland Demo", "IE", "public_authority", ("en", "ga"), 0.5),
)

CONTEXT_WEIGHTS = {"job_vacancy": 40, "cv": 25, "search": 15, "matching": 10, "training": 5,
                   "statistics": 3, "other": 2}
# What a portal writes with its translation feedback, per language.
FEEDBACK_COMMENTS = {
    "en": ("The preferred term is out of date.", "Our users search for this term."),
    "de": ("Die Bezeichnung ist veraltet.", "Unsere Nutzer suchen nach diesem Begriff."),
    "fr": ("Le terme n'est plus utilisé.", "Nos utilisateurs cherchent ce terme."),
    "es": ("El término está anticuado.", "Nuestros usuarios buscan este término."),
    "it": ("Il termine è superato.", "I nostri utenti cercano questo termine."),
    "nl": ("De term is verouderd.", "Onze gebruikers zoeken op deze term."),
    "pl": ("Termin jest przestarzały.", "Nasi użytkownicy szukają tego terminu."),
    "fi": ("Termi on vanhentunut.",), "sv": ("Termen är föråldrad.",),
    "ga": ("Tá an téarma as dáta.",),
}
# Proposed concepts: terms in use on the labour market that the bundled catalogue has no label
# for in that language (checked after normalisation).
PROPOSALS = {
    "en": ("prompt engineering", "AI literacy", "carbon accounting", "ESG reporting",
           "low-code development"),
    "de": ("Prompt-Engineering", "KI-Kompetenz", "Wärmepumpeninstallation",
           "ESG-Berichterstattung"),
    "fr": ("ingénierie de prompt", "culture de l'IA", "installation de pompes à chaleur"),
    "es": ("ingeniería de prompts", "alfabetización en IA"),
    "it": ("prompt engineering", "installazione di pompe di calore"),
    "nl": ("prompt engineering", "installatie van warmtepompen"),
    "pl": ("inżynieria promptów",), "fi": ("kehotesuunnittelu",), "sv": ("promptteknik",),
    "ga": ("innealtóireacht leideanna",),
}
UNKNOWN_CONCEPT = "http://data.europa.eu/esco/skill/00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class PlantedConcept:
    """A concept that takes a changing share of every implementer's concept_used events."""

    uri: str
    share: float  # its share when the change begins
    factor_per_30_days: float  # how the share changes every 30 days from then on
    begins: float = 0.0  # when the change begins, as a fraction of the generated days

    def share_on(self, day: int, days: int) -> float:
        """The share on the day numbered `day` (0 = the first generated day) of `days`."""
        since = max(0, day - int(self.begins * days))
        return min(1.0, self.share * self.factor_per_30_days ** (since / 30))


@dataclass(frozen=True)
class SpreadingProposal:
    """A proposed concept that one portal after another takes up, more often every month."""

    label: str
    language: str
    concept_type: str
    adopters: tuple[tuple[str, float], ...]  # (implementer name, from when: fraction of days)
    per_day: float  # proposals a day from each adopter at the end of the generated days
    factor_per_30_days: float

    def probability(self, profile: Profile, day: int, days: int, events: int) -> float:
        """The chance that one of `events` events of this implementer is this proposal."""
        begins = dict(self.adopters).get(profile.name)
        if begins is None or day < int(begins * days) or events == 0:
            return 0.0
        rate = self.per_day * self.factor_per_30_days ** ((day - (days - 1)) / 30)
        return min(1.0, rate * days / events)


@dataclass(frozen=True)
class PlantedTrends:
    concepts: tuple[PlantedConcept, ...] = ()
    proposals: tuple[SpreadingProposal, ...] = ()


DEMO_TRENDS = PlantedTrends(
    concepts=(
        # "mount photovoltaic panels": 1 use in 2,000 for three months, then three times as
        # many every month
        PlantedConcept("http://data.europa.eu/esco/skill/08a5f6dd-d3dd-4371-9919-6d730f34499c",
                       share=0.0005, factor_per_30_days=3.0, begins=0.5),
        # "typist": 3 % of all use for three months, then down by 60 % every month
        PlantedConcept(
            "http://data.europa.eu/esco/occupation/22f86890-f68b-402f-a711-3e6df4913271",
            share=0.03, factor_per_30_days=0.4, begins=0.5),
    ),
    proposals=(
        SpreadingProposal(
            "green hydrogen systems", "en", "skill",
            adopters=(("EU Skills Academy", 0.3), ("Careers Ireland Demo", 0.45),
                      ("Talents Paris", 0.6), ("Werk Portaal NL", 0.75),
                      ("Jobbörse Nord", 0.88)),
            per_day=3.0, factor_per_30_days=2.5),
    ),
)


@dataclass(frozen=True)
class Wording:
    """A real wording of a concept that the loaded catalogue does not have."""

    uri: str
    language: str
    label: str


@dataclass(frozen=True)
class DemoWordings:
    """Real ESCO wordings for the demo's free text, per language (kpi/data/demo/SOURCE.md):
    `labels`, sent as portals' own labels; `translations`, sent as translation feedback."""

    labels: dict[str, tuple[Wording, ...]] = field(default_factory=dict)
    translations: dict[str, tuple[Wording, ...]] = field(default_factory=dict)

    @classmethod
    def bundled(cls, known: set[str] | None = None) -> DemoWordings:
        """The wordings shipped in kpi/data/demo, for the concepts in `known` (None: all)."""
        path = Path(str(resources.files("kpi") / "data" / "demo" / "esco_wordings.csv.gz"))
        labels: dict[str, list[Wording]] = {}
        translations: dict[str, list[Wording]] = {}
        with gzip.open(path, "rb") as raw:
            for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
                if known is not None and row["conceptUri"] not in known:
                    continue
                pool = labels if row["use"] == "label" else translations
                pool.setdefault(row["language"], []).append(
                    Wording(row["conceptUri"], row["language"], row["label"]))
        return cls({k: tuple(v) for k, v in labels.items()},
                   {k: tuple(v) for k, v in translations.items()})


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))


class TrafficGenerator:
    """Generates wire-format events (dicts as a portal would POST them)."""

    def __init__(self, uris: list[str], labels: dict[tuple[str, str], list[str]],
                 start: date, end: date, seed: int = 42, zipf_s: float = 1.1,
                 planted: PlantedTrends = PlantedTrends(),
                 preferred: dict[tuple[str, str], str] | None = None,
                 wordings: DemoWordings = DemoWordings()):
        """`labels`: the catalogue's preferred and alternative labels per (uri, language);
        `preferred`: its preferred label per (uri, language); `wordings`: real wordings the
        catalogue lacks (DemoWordings.bundled())."""
        if not uris:
            raise ValueError("the catalogue is empty: run `esco-kpi init` first")
        missing = [p.uri for p in planted.concepts if p.uri not in set(uris)]
        if missing:
            raise ValueError(f"planted concepts not in the catalogue: {', '.join(missing)}")
        self.planted = planted
        self.seed = seed
        self.start, self.days = start, (end - start).days + 1
        self.labels = labels
        self.preferred = preferred or {}
        self.wordings = wordings
        # Some wordings are written by many portals, most by few: Zipf weights over each pool.
        self._wording_weights = {
            language: list(itertools.accumulate(1.0 / rank for rank in range(1, len(pool) + 1)))
            for language, pool in wordings.labels.items()}
        # Per language, the concepts that have alternative labels (for translation feedback).
        self._with_alternatives: dict[str, list[str]] = {}
        for (uri, language), found in sorted(labels.items()):
            if len(found) > 1:
                self._with_alternatives.setdefault(language, []).append(uri)
        ranked = list(uris)
        random.Random(seed).shuffle(ranked)
        self.uris = ranked
        self.cum_weights = list(itertools.accumulate(
            1.0 / (rank ** zipf_s) for rank in range(1, len(ranked) + 1)))

    @classmethod
    def from_catalogue(cls, engine: Engine, start: date, end: date, seed: int = 42,
                       languages: tuple[str, ...] = (),
                       planted: PlantedTrends = PlantedTrends()) -> TrafficGenerator:
        """A generator over the newest loaded catalogue's occupations and skills."""
        version = current_version(engine)
        with engine.connect() as conn:
            uris = list(conn.execute(
                select(concepts.c.uri).where(concepts.c.version == version,
                                             concepts.c.concept_type.in_(("occupation", "skill")))
                .order_by(concepts.c.uri)).scalars())
            labels: dict[tuple[str, str], list[str]] = {}
            preferred: dict[tuple[str, str], str] = {}
            query = select(concept_labels.c.uri, concept_labels.c.language,
                           concept_labels.c.kind, concept_labels.c.label).where(
                concept_labels.c.version == version,
                concept_labels.c.kind.in_(("preferred", "alt")))
            if languages:
                query = query.where(concept_labels.c.language.in_(languages))
            for uri, language, kind, label in conn.execute(query.order_by(
                    concept_labels.c.uri, concept_labels.c.language, concept_labels.c.label)):
                labels.setdefault((uri, language), []).append(label)
                if kind == "preferred":
                    preferred.setdefault((uri, language), label)
        return cls(uris, labels, start, end, seed, planted=planted, preferred=preferred,
                   wordings=DemoWordings.bundled(set(uris)))

    def events(self, implementer: int, profile: Profile, n: int,
               bad_share: float = 0.01) -> Iterator[dict]:
        """`n` events of one implementer, with ids stable for (seed, implementer, position)."""
        rng = random.Random(f"{self.seed}:{implementer}")
        contexts, context_w = zip(*CONTEXT_WEIGHTS.items(), strict=True)
        for k in range(n):
            event_id = f"syn-{self.seed}-{implementer}-{k}"
            language = rng.choice(profile.languages)
            # Later days see a little more use: uptake grows.
            offset = min(int(self.days * (rng.random() ** 0.8)), self.days - 1)
            day = self.start + timedelta(days=offset)
            uri = rng.choices(self.uris, cum_weights=self.cum_weights)[0]
            roll = rng.random()
            event = {"event_id": event_id, "occurred_at": day.isoformat(), "language": language,
                     "context": rng.choices(contexts, context_w)[0]}
            planted = self._planted_proposal(profile, offset, n, rng)
            if planted is not None:
                yield {**event, "type": "concept_proposed", "label": planted.label,
                       "language": planted.language, "concept_type": planted.concept_type}
            elif roll < bad_share:
                yield self._bad(event, rng, uri)
            elif roll < bad_share + 0.003:
                yield {**event, "type": "concept_used", "concept_uri": UNKNOWN_CONCEPT}
            elif roll < 0.90:
                count = 1 if rng.random() < 0.8 else rng.randint(2, 50)
                uri = self._planted_concept(offset, rng) or uri
                yield {**event, "type": "concept_used", "concept_uri": uri, "count": count}
            elif roll < 0.96:
                uri, label = self._label(uri, language, rng)
                yield {**event, "type": "label_added", "concept_uri": uri, "label": label}
            elif roll < 0.98:
                proposal = rng.choice(PROPOSALS.get(language, PROPOSALS["en"]))
                variant = rng.choice((proposal, proposal.lower(), proposal.title(),
                                      _strip_accents(proposal)))
                out = {**event, "type": "concept_proposed", "label": variant,
                       "concept_type": "skill" if rng.random() < 0.85 else "occupation"}
                if rng.random() < 0.6:
                    out["concept_uri"] = uri
                    out["comment"] = "Asked for in many vacancies; no ESCO concept fits."
                yield out
            else:
                feedback = self._translation(language, rng)
                if feedback is None:  # no material in this language: plain use instead
                    yield {**event, "type": "concept_used", "concept_uri": uri}
                    continue
                uri, suggestion = feedback
                comments = FEEDBACK_COMMENTS.get(language, FEEDBACK_COMMENTS["en"])
                yield {**event, "type": "translation_feedback", "concept_uri": uri,
                       "label": suggestion[:200], "comment": rng.choice(comments)}

    def _planted_concept(self, day: int, rng: random.Random) -> str | None:
        for planted in self.planted.concepts:
            if rng.random() < planted.share_on(day, self.days):
                return planted.uri
        return None

    def _planted_proposal(self, profile: Profile, day: int, events: int,
                          rng: random.Random) -> SpreadingProposal | None:
        for planted in self.planted.proposals:
            chance = planted.probability(profile, day, self.days, events)
            if chance and rng.random() < chance:
                return planted
        return None

    def _label(self, uri: str, language: str, rng: random.Random) -> tuple[str, str]:
        """A portal's own label: (concept uri, label)."""
        pool = self.wordings.labels.get(language)
        roll = rng.random()
        if pool and roll < 0.5:
            # A real wording the catalogue lacks: a candidate label, sometimes spelt otherwise.
            wording = rng.choices(pool, cum_weights=self._wording_weights[language])[0]
            label = wording.label
            if rng.random() < 0.2:
                label = rng.choice((label.lower(), _strip_accents(label), label.capitalize()))
            return wording.uri, label
        gendered = self.preferred.get((uri, language), "")
        if "/" in gendered and roll < 0.7:
            # One form of a gendered preferred label ("Arzt/Ärztin"): not new.
            return uri, rng.choice(gendered.split("/")).strip()
        known = self.labels.get((uri, language)) or self.labels.get((uri, "en")) or ["skill"]
        # The catalogue's own label, written otherwise: not a candidate (in a language the
        # catalogue has no label in for this concept, the row says it cannot judge).
        base = rng.choice(known)
        return uri, rng.choice((base, base.upper(), _strip_accents(base), f"  {base}  ",
                                base + "."))[:200]

    def _translation(self, language: str, rng: random.Random) -> tuple[str, str] | None:
        """Translation feedback: (concept uri, suggested label), or None without material."""
        pool = self.wordings.translations.get(language)
        if pool and rng.random() < 0.3:
            # A newer release's wording of the concept's preferred label.
            wording = rng.choice(pool)
            return wording.uri, wording.label
        candidates = self._with_alternatives.get(language)
        if not candidates:
            return None
        # One of the concept's own alternative labels, suggested as its preferred label.
        uri = rng.choice(candidates)
        preferred = self.preferred.get((uri, language))
        others = [label for label in self.labels[(uri, language)] if label != preferred]
        return uri, rng.choice(others or self.labels[(uri, language)])

    def _bad(self, event: dict, rng: random.Random, uri: str) -> dict:
        kind = rng.randrange(4)
        if kind == 0:
            return {**event, "type": "concept_used", "concept_uri": uri, "language": "xx"}
        if kind == 1:
            return {**event, "type": "label_added", "concept_uri": uri,
                    "label": "contact jane.doe@example.org"}
        if kind == 2:
            return {**event, "type": "concept_used", "concept_uri": uri, "user_id": "u-1"}
        return {**event, "type": "concept_used", "concept_uri": uri, "count": 0}


def split_volume(total: int, profiles: tuple[Profile, ...] = DEMO_IMPLEMENTERS) -> list[int]:
    """How many events each profile sends out of `total`: shares by volume that add up to
    exactly `total` (the largest remainders get the events rounding down left over)."""
    weight = sum(p.volume for p in profiles)
    exact = [total * p.volume / weight for p in profiles]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(profiles)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[:total - sum(shares)]:
        shares[i] += 1
    return shares
