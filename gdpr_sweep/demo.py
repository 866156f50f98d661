"""Build the demo: a SQLite database modelled on the seeds and a config that sweeps it.

The schema follows seeds 000 (a career/recruitment consultancy: candidates, counselling
and outplacement cases, consultant mail, CVs, recruitment, invoices) and 002 (a
management consultancy: customers, contact persons, engagements, projects, CCTV,
newsletter sign-ups). Every person in it is made up: random Danish first and last
names, e-mails at example.dk/example.com, phone numbers "+45 0000 NNNN", CPR numbers
with a 9 serial and addresses on streets that do not exist.

The data is deterministic (`random.Random(2024)`) and relative to `today`: whatever the
day, every rule has rows that are due, rows that are not, and (where the rule has an
exception or an `only` filter) rows that would be due but are kept by it. No rule is
due for more than about 45% of its table, so `gdpr-sweep run` passes the default
`max_fraction = 0.5` guard on the demo without `--force`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import tempfile
import tomllib
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    insert,
)

from .config import Config, parse_config

DB_NAME = "demo.db"
CONFIG_NAME = "gdpr-sweep.toml"
SEED = 2024

#: `attachment.data_item_type` values: the polymorphic reference's target table.
ITEM_CANDIDATE = 100
ITEM_PROJECT = 200

Row = dict[str, Any]

# --- the fake vocabulary -----------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """Split a vocabulary block: one entry per line, or entries separated by commas."""
    return tuple(
        w.strip() for line in text.strip().splitlines() for w in line.split(",") if w.strip()
    )


FIRST_NAMES = _words("""
    Mette, Anne, Kirsten, Hanne, Camilla, Louise, Sofie, Ida, Freja, Maja, Line, Marianne
    Signe, Emma, Laura, Julie, Birgitte, Karen, Lars, Jens, Peter, Michael, Henrik, Søren
    Thomas, Rasmus, Mads, Anders, Niels, Jesper, Frederik, Mikkel, Christian, Martin
    Kasper, Jonas, Bo, Ole, Torben, Asger
""")
LAST_NAMES = _words("""
    Nielsen, Jensen, Hansen, Pedersen, Andersen, Christensen, Larsen, Sørensen, Rasmussen
    Jørgensen, Petersen, Madsen, Kristensen, Olsen, Thomsen, Poulsen, Johansen, Møller
    Mortensen, Knudsen, Jakobsen, Lauridsen, Frandsen, Dahl, Holm, Bech, Kjær, Lund
    Østergaard, Vestergaard
""")
STREETS = _words("""
    Fakevej, Opdigtet Allé, Eksempelgade, Prøvestien, Testvej, Demovænget, Fiktivparken
    Påskudsgade, Skæbnevej, Drømmestræde, Luftkastellet, Attrapvej
""")
CITIES = _words("""
    8000 Aarhus C, 8200 Aarhus N, 2100 København Ø, 2300 København S, 5000 Odense C
    9000 Aalborg, 6700 Esbjerg, 7100 Vejle, 8600 Silkeborg, 4000 Roskilde, 8900 Randers
    7400 Herning, 6000 Kolding, 8700 Horsens
""")
MUNICIPALITIES = tuple(
    f"{town} Kommune"
    for town in _words("Aarhus, Odense, Aalborg, Københavns, Esbjerg, Vejle, Silkeborg, Randers")
)
PROGRAMMES = ("career counselling", "online academy", "JobSpot")
# Free texts hold no commas: _words() splits on them.
REFERRAL_NOTES = _words("""
    Henvist af jobcentret; ønsker afklaring af jobmål.
    Referred by the job centre after a long period of unemployment.
    Tilmeldt af uddannelsesstedet; nyuddannet og søger første job.
    Ledig efter fyring; ønsker at skifte branche.
    Referred after a company closure; ten years in production.
    Har selv kontaktet jobcentret; motiveret for forløbet.
""")
HEALTH_NOTES = _words("""
    Oplyser rygproblemer; kan ikke løfte tungt.
    Stress-related sick leave for three months (self-reported).
    Nedsat hørelse; foretrækker møder ansigt til ansigt.
    Migræne; har brug for pauser.
    Tidligere knæoperation; stående arbejde begrænset.
""")
CONSULTANT_NOTES = _words("""
    Godt første møde; CV gennemgået og opdateret.
    Focus on warehouse and logistics jobs; driving licence B.
    Øver jobsamtaler; mangler overblik over egne kompetencer.
    Has two interviews next week; follow up afterwards.
    Vil gerne i praktik; kontakt til to virksomheder.
    Afklaret om uddannelse; søger optag til efteråret.
""")
SECTORS = _words("""
    Industri, Finans, Offentlig administration, Detailhandel, IT, Byggeri
    Transport og logistik, Sundhed
""")
POSITIONS = _words("""
    Lagermedarbejder, Projektleder, Regnskabsassistent, Salgskonsulent, HR-partner
    Softwareudvikler, Økonomichef, Kundeservicemedarbejder, Produktionsleder
    Marketingkoordinator
""")
PERSONALITY_TESTS = _words("""
    Persontest (demo): høj på samarbejde og middel på struktur.
    Personality profile (demo): high drive; low patience with detail.
    Persontest (demo): analytisk og selvstændig; rolig under pres.
    Cognitive test (demo): 7/10 verbal; 8/10 numerical.
""")
TEST_RESULTS = _words("""
    Interessetest: praktisk-teknisk profil.
    Competence test: strong in planning; weaker in written English.
    Styrketest: relationsskabende og vedholdende.
""")
MEETING_MINUTES = _words("""
    Møde 1: forventninger afstemt og jobmål formuleret.
    Meeting 2: LinkedIn profile updated; five companies contacted.
    Møde 3: aftale om løntilskud drøftet med virksomheden.
    Meeting 4: job offer received; negotiating the start date.
""")
MAIL_SUBJECTS = _words("""
    Dit CV: mine kommentarer
    Mødebooking
    Re: Ansøgning
    Follow-up after our meeting
    Opfølgning på din jobsituation
    Materiale til næste gang
""")
MAIL_BODIES = _words("""
    Hej. Tak for i dag. Jeg har kigget på dit CV og sat kommentarer ind.
    Hi. Attached is the exercise we talked about. See you on Thursday.
    Hej. Hvordan går det med jobsøgningen? Skriv gerne et par ord tilbage.
    Hej. Her er linket til stillingen vi talte om.
""")
COMPANY_WORDS = _words("""
    Nordlys, Havblik, Kystlinje, Bøgelund, Lærkehøj, Solsikke, Granly, Vestvind, Østerled
    Fyrtårn, Engblomst, Skovsø, Birkedal, Klitrose
""")
COMPANY_TRADES = _words("""
    Logistik, Byg, Software, Rådgivning, Fødevarer, Energi, Transport, Design, Maskiner
    Ejendomme, Medico, Handel
""")
COMPANY_FORMS = ("ApS", "A/S")
ENGAGEMENTS = _words("""
    Workshop om strategi, Procesanalyse, Ledelsessparring, Styregruppemøde
    Implementering af nyt ERP-system, Change management training, Lean-forløb
    Organisationsanalyse, Board seminar, Opfølgningsmøde
""")
PROJECT_TITLES = _words("""
    Lean i lageret, Digital transformation, Ny organisationsstruktur, Supply chain review
    Strategiproces, Kundeoplevelse 2.0, Operational excellence, Ledelsesudvikling
    Fusion og integration, Prisstrategi
""")
PROJECT_NOTES = _words("""
    Styregruppe med direktionen; interviews med 12 medarbejdere.
    Workshops with the management team; data from the ERP system.
    Fokus på gennemløbstid; målinger før og efter.
    Sensitive: includes a restructuring plan with named employees.
""")
DOCUMENTS = _words("""
    Statusrapport, Interviewnoter, Styregruppereferat, Slutrapport, Analysis workbook
    Kick-off slides
""")
CAMERAS = ("indgang", "reception", "parkering", "varegaard")


# --- the schema ----------------------------------------------------------------------------


def demo_metadata() -> MetaData:
    """Return the demo schema: seeds 000 and 002 as tables, with their foreign keys."""
    md = MetaData()

    def pk() -> Column[int]:
        return Column("id", Integer, primary_key=True, autoincrement=True)

    Table(
        "candidate",
        md,
        pk(),
        Column("name", String(120)),
        Column("email", String(254), unique=True),
        Column("cpr", String(11), index=True),
        Column("phone", String(20)),
        Column("address", String(200)),
        Column("birth_date", Date),
        Column("created_at", DateTime, nullable=False),
    )
    Table(
        "counselling_case",
        md,
        pk(),
        Column("candidate_id", Integer, ForeignKey("candidate.id"), nullable=False, index=True),
        Column("municipality", String(60), nullable=False),
        Column("programme", String(40), nullable=False),
        Column("status", String(10), nullable=False),
        Column("course_started_on", Date, nullable=False),
        Column("course_ended_on", Date),
        Column("participant_name", String(120)),
        Column("email", String(254)),
        Column("phone", String(20)),
        Column("cpr", String(11)),
        Column("address", String(200)),
        Column("birth_date", Date),
        Column("referral_notes", Text),
        Column("health_notes", Text),
        Column("consultant_notes", Text),
        Column("outcome", String(40)),
    )
    Table(
        "outplacement_case",
        md,
        pk(),
        Column("candidate_id", Integer, ForeignKey("candidate.id"), nullable=False, index=True),
        Column("employer_sector", String(60)),
        Column("status", String(10), nullable=False),
        Column("started_on", Date, nullable=False),
        Column("ended_on", Date),
        Column("participant_name", String(120)),
        Column("email", String(254)),
        Column("phone", String(20)),
        Column("cv_text", Text),
        Column("test_results", Text),
        Column("references_text", Text),
        Column("meeting_minutes", Text),
        Column("wage_subsidy", Boolean, nullable=False),
        Column("outcome", String(40)),
    )
    Table(
        "consultant_mail",
        md,
        pk(),
        # No foreign key: the mail system links to the candidate by address only.
        Column("candidate_email", String(254), index=True),
        Column("subject_line", String(200)),
        Column("body", Text),
        Column("sent_at", DateTime, nullable=False),
    )
    Table(
        "attachment",
        md,
        pk(),
        # Polymorphic: data_item_id is a candidate.id (type 100) or a project.id (type 200).
        Column("data_item_type", Integer, nullable=False),
        Column("data_item_id", Integer, nullable=False, index=True),
        Column("filename", String(200), nullable=False),
        Column("content", Text),
        Column("uploaded_at", DateTime, nullable=False),
    )
    Table(
        "recruitment_application",
        md,
        pk(),
        Column("candidate_id", Integer, ForeignKey("candidate.id"), nullable=False, index=True),
        Column("position", String(120), nullable=False),
        Column("applied_at", DateTime, nullable=False),
        Column("cv_text", Text),
        Column("personality_test", Text),
        Column("storage_consent_until", Date),
    )
    Table(
        "customer",
        md,
        pk(),
        Column("company_name", String(200), nullable=False),
        Column("contact_email", String(254)),
        Column("created_at", DateTime, nullable=False),
    )
    Table(
        "invoice",
        md,
        pk(),
        Column("candidate_id", Integer, ForeignKey("candidate.id"), index=True),
        Column(
            "customer_id",
            Integer,
            ForeignKey("customer.id", ondelete="SET NULL"),
            index=True,
        ),
        Column("invoice_date", Date, nullable=False),
        Column("amount", Numeric(12, 2), nullable=False),
        Column("recipient_name", String(120), nullable=False),
        Column("recipient_cpr", String(11)),
    )
    Table(
        "contact_person",
        md,
        pk(),
        Column("customer_id", Integer, ForeignKey("customer.id"), nullable=False, index=True),
        Column("name", String(120)),
        Column("email", String(254)),
        Column("phone", String(20)),
    )
    Table(
        "engagement",
        md,
        pk(),
        Column("customer_id", Integer, ForeignKey("customer.id"), nullable=False, index=True),
        Column("description", String(200)),
        Column("performed_at", DateTime, nullable=False),
    )
    Table(
        "project",
        md,
        pk(),
        Column(
            "customer_id",
            Integer,
            ForeignKey("customer.id", ondelete="SET NULL"),
            index=True,
        ),
        Column("title", String(200), nullable=False),
        Column("ended_on", Date),
        Column("special_circumstances", Boolean, nullable=False),
        Column("notes", Text),
    )
    Table(
        "project_document",
        md,
        pk(),
        Column("project_id", Integer, ForeignKey("project.id"), nullable=False, index=True),
        Column("title", String(200)),
        Column("body", Text),
        Column("created_at", DateTime, nullable=False),
    )
    Table(
        "cctv_recording",
        md,
        pk(),
        Column("camera", String(40), nullable=False),
        Column("recorded_at", DateTime, nullable=False),
        Column("file_path", String(200), nullable=False),
        Column("under_investigation", Boolean, nullable=False),
    )
    Table(
        "newsletter_signup",
        md,
        pk(),
        Column("email", String(254), nullable=False),
        Column("name", String(120)),
        Column("signed_up_at", DateTime, nullable=False),
        Column("unsubscribed_at", DateTime),
    )
    return md


# --- the data ------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    folded = text.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return "".join(ch if ch.isalnum() else "-" for ch in folded).strip("-")


class _DemoData:
    """Generate every table's rows, in insertion (foreign-key) order."""

    def __init__(self, today: dt.date) -> None:
        self.today = today
        self.rng = random.Random(SEED)
        self.emails: set[str] = set()
        self.rows: dict[str, list[Row]] = {}

    # helpers

    def ago(self, days: int) -> dt.date:
        return self.today - dt.timedelta(days=days)

    def at(self, day: dt.date, first_hour: int = 8, last_hour: int = 16) -> dt.datetime:
        """Return a naive local wall-clock time on `day` (never in a DST gap: not 02:xx)."""
        rng = self.rng
        time = dt.time(rng.randint(first_hour, last_hour), rng.randint(0, 59), rng.randint(0, 59))
        return dt.datetime.combine(day, time)

    def between(self, first: dt.date, last: dt.date) -> dt.date:
        """Return a random date in [first, last] (first when the range is empty)."""
        return first + dt.timedelta(days=self.rng.randint(0, max(0, (last - first).days)))

    def add(self, table: str, row: Row) -> int:
        rows = self.rows.setdefault(table, [])
        row["id"] = len(rows) + 1
        rows.append(row)
        return row["id"]

    def name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def email(self, first: str, last: str) -> str:
        base = f"{_ascii(first)}.{_ascii(last)}"
        domain = self.rng.choice(("example.dk", "example.dk", "example.com"))
        address, n = f"{base}@{domain}", 1
        while address in self.emails:
            n += 1
            address = f"{base}{n}@{domain}"
        self.emails.add(address)
        return address

    def phone(self) -> str:
        return f"+45 0000 {self.rng.randint(0, 9999):04d}"

    def address(self) -> str:
        rng = self.rng
        floor = rng.choice(("", "", "", ", 1. tv", ", 2. th", ", st."))
        return f"{rng.choice(STREETS)} {rng.randint(1, 160)}{floor}, {rng.choice(CITIES)}"

    def money(self, low: int, high: int) -> Decimal:
        return Decimal(self.rng.randint(low * 100, high * 100)).scaleb(-2)

    # seed 000: the career and recruitment consultancy

    def candidates(self, count: int = 1500) -> None:
        rng = self.rng
        for _ in range(count):
            # Most candidates are recent; about one in nine is years old, so that old
            # cases, invoices and mails exist without making any rule due for most rows.
            if rng.random() < 0.11:
                days_ago = rng.randint(400, 2900)
            else:
                days_ago = 1 + int(380 * rng.random() ** 1.5)
            created = self.ago(days_ago)
            first, last = self.name()
            birth = self.ago(rng.randint(19 * 365, 64 * 365))
            person = {
                "name": f"{first} {last}",
                "email": self.email(first, last),
                "cpr": f"{birth:%d%m%y}-9{rng.randint(0, 999):03d}",
                "phone": self.phone(),
                "address": self.address(),
                "birth_date": birth,
                "created_at": self.at(created),
            }
            cid = self.add("candidate", person)
            kind = rng.random()
            if kind < 0.6:
                self.counselling_case(cid, person, created)
            elif kind < 0.8:
                self.outplacement_case(cid, person, created)
            if kind >= 0.8 or rng.random() < 0.12:
                self.application(cid, person, created)

    def _course(self, created: dt.date, shortest: int, longest: int) -> tuple[dt.date, dt.date]:
        start = min(created + dt.timedelta(days=self.rng.randint(0, 21)), self.today)
        return start, start + dt.timedelta(days=self.rng.randint(shortest, longest))

    def counselling_case(self, cid: int, person: Row, created: dt.date) -> None:
        rng = self.rng
        start, end = self._course(created, 42, 150)
        if end <= self.today:
            # One case in ten stays open after the course, awaiting the last follow-up:
            # the rule's `only = { status = "closed" }` keeps those.
            status = "closed" if rng.random() < 0.9 else "open"
            ended: dt.date | None = end
        else:
            status, ended = "open", None
        self.add(
            "counselling_case",
            {
                "candidate_id": cid,
                "municipality": rng.choice(MUNICIPALITIES),
                "programme": rng.choices(PROGRAMMES, weights=(6, 2, 2))[0],
                "status": status,
                "course_started_on": start,
                "course_ended_on": ended,
                "participant_name": person["name"],
                "email": person["email"],
                "phone": person["phone"],
                "cpr": person["cpr"],
                "address": person["address"],
                "birth_date": person["birth_date"],
                "referral_notes": rng.choice(REFERRAL_NOTES),
                "health_notes": rng.choice(HEALTH_NOTES) if rng.random() < 0.35 else None,
                "consultant_notes": rng.choice(CONSULTANT_NOTES),
                "outcome": (
                    rng.choices(("employed", "education", "other"), weights=(5, 2, 3))[0]
                    if status == "closed"
                    else None
                ),
            },
        )
        self.case_extras(cid, person, start, end, private_share=0.45)

    def outplacement_case(self, cid: int, person: Row, created: dt.date) -> None:
        rng = self.rng
        start, end = self._course(created, 60, 270)
        if end <= self.today:
            status = "closed" if rng.random() < 0.9 else "open"
            ended: dt.date | None = end
        else:
            status, ended = "open", None
        self.add(
            "outplacement_case",
            {
                "candidate_id": cid,
                "employer_sector": rng.choice(SECTORS),
                "status": status,
                "started_on": start,
                "ended_on": ended,
                "participant_name": person["name"],
                "email": person["email"],
                "phone": person["phone"],
                "cv_text": f"CV: {person['name']}. {rng.randint(2, 25)} års erfaring.",
                "test_results": rng.choice(TEST_RESULTS),
                "references_text": f"Reference: tidligere leder, tlf. {self.phone()}.",
                "meeting_minutes": rng.choice(MEETING_MINUTES),
                "wage_subsidy": rng.random() < 0.25,
                "outcome": (
                    rng.choices(("employed", "education", "other"), weights=(6, 1, 2))[0]
                    if status == "closed"
                    else None
                ),
            },
        )
        self.case_extras(cid, person, start, end, private_share=0.3)

    def case_extras(
        self, cid: int, person: Row, start: dt.date, end: dt.date, private_share: float
    ) -> None:
        """Add a case's mails, CV uploads and invoice."""
        rng = self.rng
        yesterday = self.ago(1)
        # Mails run from the start to the follow-up up to ~2 months after the course.
        last_mail = min(end + dt.timedelta(days=60), yesterday)
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            if start > last_mail:
                break
            self.add(
                "consultant_mail",
                {
                    "candidate_email": person["email"],
                    "subject_line": rng.choice(MAIL_SUBJECTS),
                    "body": rng.choice(MAIL_BODIES),
                    "sent_at": self.at(self.between(start, last_mail), 7, 21),
                },
            )
        if rng.random() < 0.55 and start <= yesterday:
            first, last = person["name"].split(" ", 1)
            self.add(
                "attachment",
                {
                    "data_item_type": ITEM_CANDIDATE,
                    "data_item_id": cid,
                    "filename": f"CV_{_ascii(first)}_{_ascii(last)}.pdf",
                    "content": f"Curriculum vitae (demo): {person['name']}, {person['email']}",
                    "uploaded_at": self.at(self.between(start, min(end, yesterday))),
                },
            )
        if rng.random() < private_share:
            # Paid privately: the invoice names the candidate and carries the CPR number.
            # Most are raised after the course, a few up front for a running course.
            billed = end if end <= self.today or rng.random() < 0.5 else start
            invoice_date = min(billed + dt.timedelta(days=rng.randint(0, 30)), self.today)
            self.add(
                "invoice",
                {
                    "candidate_id": cid,
                    "customer_id": None,
                    "invoice_date": invoice_date,
                    "amount": self.money(2_500, 25_000),
                    "recipient_name": person["name"],
                    "recipient_cpr": person["cpr"],
                },
            )

    def application(self, cid: int, person: Row, created: dt.date) -> None:
        rng = self.rng
        span = (self.today - created).days
        applied = self.ago(max(1, min(span, 1 + int(420 * rng.random() ** 1.8))))
        consent = None
        if rng.random() < 0.2:
            # Consent to storage beyond the guarantee period, for one to three years.
            consent = applied + dt.timedelta(days=rng.randint(365, 3 * 365))
        self.add(
            "recruitment_application",
            {
                "candidate_id": cid,
                "position": rng.choice(POSITIONS),
                "applied_at": self.at(applied, 6, 22),
                "cv_text": f"CV: {person['name']}, {person['address']}",
                "personality_test": rng.choice(PERSONALITY_TESTS) if rng.random() < 0.6 else None,
                "storage_consent_until": consent,
            },
        )

    # seed 002: the management consultancy

    def customers(self, count: int = 160) -> None:
        rng = self.rng
        names = [
            f"{w} {t} {f}" for w in COMPANY_WORDS for t in COMPANY_TRADES for f in COMPANY_FORMS
        ]
        for company in rng.sample(names, count):
            created_ago = rng.randint(20, 2950)
            created = self.ago(created_ago)
            slug = _ascii(company.rsplit(" ", 1)[0])
            cust = self.add(
                "customer",
                {
                    "company_name": company,
                    "contact_email": f"kontakt@{slug}.example.com",
                    "created_at": self.at(created),
                },
            )
            for _ in range(rng.choice((1, 1, 2, 2, 3))):
                first, last = self.name()
                self.add(
                    "contact_person",
                    {
                        "customer_id": cust,
                        "name": f"{first} {last}",
                        "email": f"{_ascii(first)}.{_ascii(last)}@{slug}.example.com",
                        "phone": self.phone(),
                    },
                )
            profile = rng.random()
            if profile < 0.12:
                continue  # never any work: counted from created_at
            if profile < 0.4 and created_ago > 1200:
                # Lapsed: the last work is more than three years ago.
                last_work = self.ago(rng.randint(1130, created_ago))
            else:
                last_work = self.ago(rng.randint(1, min(created_ago, 1050)))
            worked = self.engagements(cust, created, last_work)
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                self.project(cust, created, last_work)
            for work_day in worked:
                if rng.random() < 0.5:
                    day = work_day + dt.timedelta(days=rng.randint(0, 20))
                    self.add(
                        "invoice",
                        {
                            "candidate_id": None,
                            "customer_id": cust,
                            "invoice_date": min(day, self.today),
                            "amount": self.money(15_000, 450_000),
                            "recipient_name": company,
                            "recipient_cpr": None,
                        },
                    )
        for _ in range(12):  # internal projects, no customer
            self.project(None, self.ago(2900), self.ago(1))

    def engagements(self, cust: int, created: dt.date, last_work: dt.date) -> list[dt.date]:
        """Add a customer's work, the last of it on `last_work`; return the days worked."""
        days = sorted(
            [last_work] + [self.between(created, last_work) for _ in range(self.rng.randint(0, 6))]
        )
        for day in days:
            self.add(
                "engagement",
                {
                    "customer_id": cust,
                    "description": self.rng.choice(ENGAGEMENTS),
                    "performed_at": self.at(day),
                },
            )
        return days

    def project(self, cust: int | None, first: dt.date, last: dt.date) -> None:
        rng = self.rng
        start = self.between(first, last)
        end: dt.date | None = start + dt.timedelta(days=rng.randint(30, 400))
        assert end is not None
        if end >= self.today:
            end = None  # still running
        # A few projects are kept past five years for specific circumstances (policy 002).
        special = end is not None and rng.random() < (0.25 if end < self.ago(1830) else 0.03)
        pid = self.add(
            "project",
            {
                "customer_id": cust,
                "title": rng.choice(PROJECT_TITLES)
                if cust
                else f"Intern: {rng.choice(PROJECT_TITLES)}",
                "ended_on": end,
                "special_circumstances": special,
                "notes": rng.choice(PROJECT_NOTES),
            },
        )
        last_doc = min(end or self.today, self.ago(1))
        for _ in range(rng.randint(1, 5)):
            self.add(
                "project_document",
                {
                    "project_id": pid,
                    "title": rng.choice(DOCUMENTS),
                    "body": rng.choice(PROJECT_NOTES),
                    "created_at": self.at(self.between(start, last_doc)),
                },
            )
        if rng.random() < 0.5:
            self.add(
                "attachment",
                {
                    "data_item_type": ITEM_PROJECT,
                    "data_item_id": pid,
                    "filename": f"projekt-{pid}-bilag.pdf",
                    "content": "Projektbilag (demo).",
                    "uploaded_at": self.at(self.between(start, last_doc)),
                },
            )

    def cctv(self) -> None:
        """Several recordings a day per camera over the last ten days; two incidents."""
        rng = self.rng
        incidents = {(7, "parkering"), (9, "varegaard")}
        for days_ago in range(10, 0, -1):
            day = self.ago(days_ago)
            for camera in CAMERAS:
                for _ in range(rng.randint(2, 4)):
                    at = self.at(day, 6, 22)
                    self.add(
                        "cctv_recording",
                        {
                            "camera": camera,
                            "recorded_at": at,
                            "file_path": f"/srv/cctv/{camera}/{at:%Y%m%d-%H%M%S}.mp4",
                            "under_investigation": (days_ago, camera) in incidents,
                        },
                    )

    def newsletter(self, count: int = 600) -> None:
        rng = self.rng
        for _ in range(count):
            first, last = self.name()
            signed_ago = rng.randint(2, 2000)
            unsubscribed = None
            if rng.random() < 0.2:
                # Half unsubscribed within the last 30 days (not yet due), half earlier.
                gone_ago = rng.randint(1, 29) if rng.random() < 0.5 else rng.randint(32, 900)
                unsubscribed = self.at(self.ago(min(gone_ago, signed_ago - 1)), 6, 22)
            self.add(
                "newsletter_signup",
                {
                    "email": f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99)}@example.com",
                    "name": f"{first} {last}" if rng.random() < 0.9 else None,
                    "signed_up_at": self.at(self.ago(signed_ago), 6, 22),
                    "unsubscribed_at": unsubscribed,
                },
            )

    def build(self) -> dict[str, list[Row]]:
        for table in demo_metadata().sorted_tables:
            self.rows[table.name] = []
        self.candidates()
        self.customers()
        self.cctv()
        self.newsletter()
        return self.rows


def build_demo_database(db_path: Path, today: dt.date) -> None:
    """Build the demo SQLite database at `db_path` (replacing it) with data relative to `today`.

    The file is written under a temporary name in the same directory and renamed into
    place at the end, so an interrupted build never leaves half a database behind.
    """
    db_path = Path(db_path)
    rows = _DemoData(today).build()
    metadata = demo_metadata()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        engine = create_engine(f"sqlite:///{tmp}")
        try:
            with engine.begin() as conn:
                metadata.create_all(conn)
                for table in metadata.sorted_tables:
                    if rows[table.name]:
                        conn.execute(insert(table), rows[table.name])
                # The day the rows are relative to, so a later `demo` can say so.
                conn.exec_driver_sql(f"PRAGMA user_version = {today:%Y%m%d}")
        finally:
            engine.dispose()
        os.replace(tmp, db_path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --- the config ----------------------------------------------------------------------------

_CONFIG = """\
# gdpr-sweep demo config: the retention rules of two Danish privacy policies
# (seeds 000 and 002) applied to demo.db. Every person in demo.db is made up.
#
#   gdpr-sweep plan             what is due today, per rule (changes nothing)
#   gdpr-sweep plan --as-of 2030-01-01
#   gdpr-sweep erase --subject email=... --dry-run

[sweep]
state_url = "sqlite:///gdpr-sweep-state.db"   # relative to this file
hash_key_env = "GDPR_SWEEP_KEY"
timezone = "Europe/Copenhagen"
fiscal_year_end = "12-31"
batch_size = 5000
max_fraction = 0.5

[databases.demo]
url = "sqlite:///demo.db"          # relative to this file
controller = "Demo Karriererådgivning ApS"

# --- seed 000: career counselling, outplacement and recruitment ----------------------

# "6 måneder efter endt forløb anonymiseres data, så de ikke længere kan henføres til
#  konkrete personer, men så vi stadigt kan levere en samlet statistik på resultaterne
#  til kunden." (case data anonymised 6 months after the course ends; the statistics
#  -- municipality, programme, dates, outcome -- survive)
[[rules]]
id = "counselling-anonymise"
table = "counselling_case"
action = "anonymise"
after = "6 months"
since = "course_ended_on"
only = { status = "closed" }
basis = "GDPR art. 6(1)(c), 9(2)(b)"
[rules.columns]
participant_name = "null"
email = "null"
cpr = "null"
address = "null"
phone = "hash"
birth_date = "year"
referral_notes = "redact"
health_notes = "redact"
consultant_notes = "redact"

# Outplacement: "6 måneder efter endt forløb anonymiseres data" (same as counselling)
[[rules]]
id = "outplacement-anonymise"
table = "outplacement_case"
action = "anonymise"
after = "6 months"
since = "ended_on"
only = { status = "closed" }
basis = "GDPR art. 6(1)(a)"
[rules.columns]
participant_name = "null"
email = "null"
phone = "hash"
cv_text = "redact"
test_results = "redact"
references_text = "redact"
meeting_minutes = "redact"

# "Dialog med din konsulent via mails slettes efter 6 mdr., herunder fremsendelse af CV."
# (e-mail dialogue with the consultant is deleted after 6 months)
[[rules]]
id = "consultant-mail-delete"
table = "consultant_mail"
action = "delete"
after = "6 months"
since = "sent_at"
basis = "GDPR art. 6(1)(c), 9(2)(b)"

# ... "herunder fremsendelse af CV" (CVs sent to the consultant: data_item_type 100;
# type 200 is a project's attachment and is not touched by this rule)
[[rules]]
id = "attachment-delete"
table = "attachment"
action = "delete"
after = "6 months"
since = "uploaded_at"
only = { data_item_type = 100 }
basis = "GDPR art. 6(1)(c), 9(2)(b)"

# "Oplysninger slettes hos os 6 måneder efter fakturering" (all personal data deleted
# 6 months after invoicing). The clock is the candidate's latest invoice; a candidate
# never invoiced is not due by this rule. email is UNIQUE, hence "hash", not "null".
[[rules]]
id = "candidate-anonymise-after-invoicing"
table = "candidate"
action = "anonymise"
after = "6 months"
since_latest = { table = "invoice", column = "invoice_date", key = "candidate_id" }
basis = "GDPR art. 5(1)(e); proof of contract fulfilment"
[rules.columns]
name = "null"
email = "hash"
cpr = "null"
phone = "null"
address = "null"
birth_date = "year"

# "De oplysninger der fremgår af faktura slettes efter 5 år jf. Bogføringsloven"
# (invoice data kept 5 years, counted from the end of the financial year; not deleted
# when consent is withdrawn)
[[rules]]
id = "invoice-delete"
table = "invoice"
action = "delete"
after = "5 years"
since = "invoice_date"
from_fiscal_year_end = true
basis = "Danish Bookkeeping Act § 10"

# "Oplysninger i Recruitio slettes efter 180 dage, medmindre du afgiver samtykke til
#  opbevaring i længere tid" (deleted after 180 days unless the candidate consents
#  to longer storage)
[[rules]]
id = "recruitment-delete"
table = "recruitment_application"
action = "delete"
after = "180 days"
since = "applied_at"
unless_after = "storage_consent_until"
basis = "GDPR art. 6(1)(f); storage by consent art. 6(1)(a)"

# --- seed 002: the management consultancy ---------------------------------------------

# "Vi opbevarer som udgangspunkt personoplysningerne i fem år efter projektet er
#  afsluttet, hvorefter de slettes, medmindre der er konkrete omstændigheder"
# (project data kept 5 years after the project ends, unless specific circumstances)
[[rules]]
id = "project-delete"
table = "project"
action = "delete"
after = "5 years"
since = "ended_on"
unless_true = "special_circumstances"
cascade = ["project_document"]
basis = "GDPR art. 5(1)(e); data-protection policy § 6"

# "Senest tre år efter der ikke har været udført arbejde for en kunde, slettes
#  kundeoplysninger." (at the latest 3 years after the last work performed; a customer
# with no work at all counts from created_at). project.customer_id and
# invoice.customer_id are ON DELETE SET NULL: projects and invoices have rules of their own.
[[rules]]
id = "customer-delete"
table = "customer"
action = "delete"
after = "3 years"
since_latest = { table = "engagement", column = "performed_at", key = "customer_id" }
since = "created_at"
cascade = ["contact_person", "engagement"]
basis = "GDPR art. 6(1)(b), 6(1)(f); data-protection policy § 6"

# "Optagelserne overskrives automatisk efter 5 dage, medmindre et problem er
#  identificeret og kræver undersøgelse." (CCTV overwritten after 5 days unless a
# problem is identified and needs investigation)
[[rules]]
id = "cctv-delete"
table = "cctv_recording"
action = "delete"
after = "5 days"
since = "recorded_at"
unless_true = "under_investigation"
basis = "GDPR art. 6(1)(f); Danish TV Surveillance Act"

# "Data opbevares kun så længe de har forretningsmæssig relevans ... eller indtil
#  brugeren begærer dem slettet." (kept until the person asks for deletion: an
# unsubscribed sign-up goes 30 days later; NULL = still subscribed = never due)
[[rules]]
id = "newsletter-delete"
table = "newsletter_signup"
action = "delete"
after = "30 days"
since = "unsubscribed_at"
basis = "GDPR art. 6(1)(a)"

# --- one named person: erase and export -------------------------------------------------

[subject]
root = "candidate"
identifiers = { email = "email", cpr = "cpr" }
# counselling_case, outplacement_case, recruitment_application and invoice reach
# candidate through foreign keys. Two links the schema does not declare:

[[subject.links]]
table = "consultant_mail"         # the mail system knows the address, not the id
column = "candidate_email"
references = "candidate.email"

[[subject.links]]
table = "attachment"              # polymorphic: a candidate's file where type = 100
column = "data_item_id"
references = "candidate.id"
only = { data_item_type = 100 }

[subject.erase.invoice]
action = "keep"                   # "slettes derfor ikke hvis du trækker dit samtykke tilbage"
rule = "invoice-delete"           # ... until the Bookkeeping Act's 5 years have passed

[subject.erase.candidate]
action = "anonymise"              # the row stays, anonymised, while invoices refer to it
[subject.erase.candidate.columns]
name = "null"
email = "hash"
cpr = "null"
phone = "null"
address = "null"
birth_date = "year"
"""


def demo_config_text() -> str:
    """Return the TOML config that sweeps the demo database."""
    return _CONFIG


def demo_config(directory: Path) -> Config:
    """Return the demo's config as it will be read from DIR (without writing anything)."""
    return parse_config(tomllib.loads(_CONFIG), Path(directory) / CONFIG_NAME)


def built_for(db_path: Path) -> dt.date | None:
    """Return the day an existing demo database was built for (None if unknown)."""
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            stamp = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
    finally:
        engine.dispose()
    try:
        return dt.datetime.strptime(str(stamp), "%Y%m%d").date()
    except ValueError:
        return None


def write_demo(directory: Path, today: dt.date | None = None) -> tuple[Path, Path]:
    """Create (if missing) DIR/demo.db and DIR/gdpr-sweep.toml; return (config, database).

    The rows are relative to `today` (default: the local date now), so that at that
    day every rule has due and not-due rows. An existing file is never overwritten, so
    running it again is safe and keeps a demo database that has already been swept.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_path, db_path = directory / CONFIG_NAME, directory / DB_NAME
    if not db_path.exists():
        build_demo_database(db_path, today or dt.date.today())
    if not config_path.exists():
        with contextlib.suppress(FileExistsError), config_path.open("x", encoding="utf-8") as f:
            f.write(demo_config_text())
    return config_path, db_path
