"""The demo's fake vocabulary: Danish first and last names, streets and cities that do
not exist, and the free texts (notes, mails, minutes) its rows are made of."""

from __future__ import annotations


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
