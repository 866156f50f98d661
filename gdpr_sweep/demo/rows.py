"""The demo's rows: deterministic (`random.Random(2024)`) and relative to `today`, so
that every rule has due rows, rows not yet due and rows kept by an exception."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from decimal import Decimal
from typing import Any

from .tables import demo_metadata
from .vocabulary import (
    CAMERAS,
    CITIES,
    COMPANY_FORMS,
    COMPANY_TRADES,
    COMPANY_WORDS,
    CONSULTANT_NOTES,
    DOCUMENTS,
    ENGAGEMENTS,
    FIRST_NAMES,
    HEALTH_NOTES,
    LAST_NAMES,
    MAIL_BODIES,
    MAIL_SUBJECTS,
    MEETING_MINUTES,
    MUNICIPALITIES,
    PERSONALITY_TESTS,
    POSITIONS,
    PROGRAMMES,
    PROJECT_NOTES,
    PROJECT_TITLES,
    REFERRAL_NOTES,
    SECTORS,
    STREETS,
    TEST_RESULTS,
)

SEED = 2024

#: `attachment.data_item_type` values: the polymorphic reference's target table.
ITEM_CANDIDATE = 100
ITEM_PROJECT = 200

Row = dict[str, Any]


def _ascii(text: str) -> str:
    folded = text.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return "".join(ch if ch.isalnum() else "-" for ch in folded).strip("-")


class DemoData:
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
