"""Which column names look personal: the default patterns and how a name is matched.

A column "looks personal" when one of `DEFAULT_PATTERNS` or the caller's extra patterns
finds a match (case-insensitive `re.search`) in its name as written or in its
snake_case form (`contactEmail` → `contact_email`). The default patterns match whole
words of a name (a word ends at `_`, a digit or the end of the name), so `filename`,
`file_name`, `table_name`, `schema_name`, `company_name`, `hostname`, `cvr` and
`automobile` are not personal, while `first_name`, `FirstName`, `email2`, `fornavn` and
`recipient_cpr` are. Choices: `name`/`navn` on its own is personal only as a column's
whole name, otherwise only with a prefix that says whose (`first_`, `customer_`,
`for`, `efter` ...), so `company_name`, `product_name` and `display_name` are not;
`username`/`brugernavn` *are* (an online identifier, GDPR art. 4(1)); `nickname` and
`kaldenavn` are not (add them with an extra pattern); salary, `wage` and `løn` are, but
`wage_subsidy`/`løntilskud` flags are not; `account_number` is, though a bookkeeping
schema may use it for ledger accounts (pass it in `ignore`).

Each default pattern has a data category (`PATTERN_CATEGORIES`: contact, identity
number, location, health, free text, financial, ...), which `init` writes into the
rules it drafts.

Used by `scan.py` and `draft/`, which add the caller's extra patterns (`compile_patterns`).
"""

from __future__ import annotations

import re

from .errors import ConfigError

_L = r"(?<![a-z])"  # a word starts: the name's start, "_", a digit
_R = r"(?![a-z])"  # a word ends


def _words(pattern: str) -> str:
    """Spell out the word boundaries `<` (a word starts) and `>` (a word ends)."""
    return pattern.replace("<", _L).replace(">", _R)


#: Case-insensitive regexes; a column whose name (or snake_case name) matches one
#: looks personal. English and Danish naming habits, one pattern per kind of data.
DEFAULT_PATTERNS: tuple[str, ...] = tuple(
    _words(pattern)
    for pattern in (
        # a person's name: "name"/"navn" as the whole name, or with a prefix saying whose
        # (never file_name, table_name, schema_name, company_name, product_name ...)
        r"^(?:name|navn)$|<(?:first|last|middle|full|given|family|maiden|sur|person"
        r"|participant|recipient|contact|customer|patient|employee|candidate|applicant"
        r"|visitor|guest|member|student|owner|holder|user|fore?|efter|mellem|fulde?|fuldt"
        r"|kunde|deltager|bruger|modtager|kontakt)_?(?:name|navn)>",
        # e-mail
        r"<e_?mail|<mail(?:_?ad(?:d?ress|resse))?$",
        # telephone
        r"phone|<mobil|<(?:tlf|telefon|fax|msisdn)|<tel(?:_?(?:no|nr))?>",
        # national identity numbers and identity documents
        r"<(?:cpr|ssn)|social_?security|<person_?(?:nummer|nr|no)>|national_?id|<tax_?id>"
        r"|passport|<pas_?(?:nr|nummer)|driv(?:er|ing)s?_?licen[cs]e|k(?:ø|oe)rekort",
        # postal address
        r"addr|adresse|<adr>|street|<(?:vej|gade)(?:_?navn)?>|<post(?:al|_?(?:code|nr|nummer))"
        r"|<zip(?:_?code)?>|<(?:hus_?(?:nr|nummer)|house_?(?:number|no|nr))",
        # date of birth
        r"birth|<dob>|f(?:ø|oe|o)dsel|<f(?:ø|oe)dt>",
        # free text about a person
        r"<(?:notes?|notat(?:er)?|comments?|remarks?|kommentar(?:er)?"
        r"|bem(?:æ|ae)rkning(?:er)?|free_?text|fritekst)>",
        # health (GDPR art. 9)
        r"health|diagnos|medic(?:al|ation|in)|helbred|sygdom|<sick|handicap|disabilit|allerg",
        # other special categories (GDPR art. 9)
        r"religio|ethnic|etnisk|sexual|biometri|genetic|genetisk|fingerprint|trade_?union"
        r"|fagforening|politic|politisk|<(?:race|gender|sex|k(?:ø|oe)n)>",
        # online identifiers
        r"<ip(?:v[46])?(?:_?addr(?:ess)?)?>",
        # CV / résumé
        r"<cv>|<r[eé]sum[eé]>|curriculum",
        # pay (a wage-subsidy flag is not pay)
        r"salar|payroll|<(?:wages?|løn|loen)>(?!_?(?:subsid|tilskud))",
        # bank and card numbers
        r"iban|<(?:bank_?)?account_?(?:number|no|nr)>|bank_?account|<konto_?(?:nr|nummer)"
        r"|card_?(?:number|no|nr)|credit_?card|kreditkort",
    )
)

#: What each default pattern looks for, in words, for the messages.
PATTERN_LABELS: dict[str, str] = dict(
    zip(
        DEFAULT_PATTERNS,
        (
            "a person's name",
            "an e-mail address",
            "a phone number",
            "an identity number or document",
            "a postal address",
            "a date of birth",
            "free text about a person",
            "health data",
            "special-category data",
            "an IP address",
            "a CV",
            "pay",
            "a bank or card number",
        ),
        strict=True,
    )
)


#: The data category of each default pattern (`init` writes them as a rule's
#: `categories`): the kinds a record of processing activities (GDPR art. 30) lists.
PATTERN_CATEGORIES: dict[str, str] = dict(
    zip(
        DEFAULT_PATTERNS,
        (
            "name",
            "contact",
            "contact",
            "identity-number",
            "location",
            "birth-date",
            "free-text",
            "health",
            "special-category",
            "online-identifier",
            "employment",
            "financial",
            "financial",
        ),
        strict=True,
    )
)
#: Every category name `init` uses, in the order it lists them.
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(PATTERN_CATEGORIES.values()))


def category_of(pattern: str | None) -> str | None:
    """The data category of a default pattern (None: an extra pattern, or none)."""
    return PATTERN_CATEGORIES.get(pattern) if pattern is not None else None


def compile_patterns(
    patterns: tuple[str, ...] | list[str], key_path: str = "scan.patterns"
) -> list[tuple[str, re.Pattern[str]]]:
    """Compile case-insensitive patterns; a bad one is a ConfigError naming `key_path[i]`."""
    compiled = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"{key_path}[{i}]: must be a non-empty regular expression")
        try:
            compiled.append((pattern, re.compile(pattern, re.IGNORECASE)))
        except re.error as exc:
            raise ConfigError(
                f"{key_path}[{i}]: {pattern!r} is not a regular expression ({exc})"
            ) from None
    return compiled


DEFAULT_COMPILED = compile_patterns(DEFAULT_PATTERNS, "DEFAULT_PATTERNS")


def snake_case(name: str) -> str:
    """`contactEmail` → `contact_email`, `IPAddress` → `ip_address`, `First Name` → `first_name`."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[\W_]+", "_", text).strip("_").lower()


def personal_pattern(
    column: str, patterns: list[tuple[str, re.Pattern[str]]] | None = None
) -> str | None:
    """Return the first pattern that makes `column` look personal, or None."""
    snake = snake_case(column)
    for text, regex in patterns if patterns is not None else DEFAULT_COMPILED:
        if regex.search(column) or regex.search(snake):
            return text
    return None
