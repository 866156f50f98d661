"""The demo's schema: seeds 000 and 002 as tables, with their foreign keys."""

from __future__ import annotations

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
)


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
