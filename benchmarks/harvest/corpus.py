"""A deterministic synthetic business corpus for the harvest benchmarks, and an index of it.

``generate_corpus(n_chunks, seed)`` yields exactly ``n_chunks`` passages of 300-550
characters across four sources, the way a mid-sized equipment supplier's knowledge base
looks:

- ``crm``: one account profile and one quarterly-review note per customer, and support
  tickets (one passage each) about the customer's products, filling the rest of the corpus;
- ``products``: product sheets (five sections, one passage each) and how-to articles;
- ``policies``: policies per area and region with ten numbered clauses (one passage each);
- ``operations``: incident reports that name the customers they affected.

Every family draws on its own vocabulary (names, places, products, symptoms, causes,
clauses, numbers), so BM25 and the dense model see text much like real data: entity names
are rare, domain words mid-frequency, boilerplate common. The entity tables come back with
the documents so the benign replay can ask about real customers, products and policies.

``open_knowledge_base(cache_dir, ...)`` indexes the corpus with the real indexing code
(:meth:`Indexer.plant` on sources configured in code; no files, no TOML) into
``cache_dir/index`` and reuses it on later runs: a marker file records the corpus version,
size and seed, and an interrupted build resumes (unchanged documents are skipped by hash).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.connectors.api import Document
from strongroom.server.app import App, build_app
from strongroom.server.embedder import Embedder
from strongroom.server.indexing.chunking import chunk_text
from strongroom.server.settings import ServerSettings, Settings, SourceSettings, StoreSettings

CORPUS_VERSION = 1
SOURCES = {
    "crm": "Customer accounts, review notes and support tickets",
    "products": "Product sheets and how-to articles",
    "policies": "Company policies by region",
    "operations": "Incident reports",
}

# -- vocabulary ------------------------------------------------------------------------------

_PREFIXES = [
    "Harlow",
    "Brightwater",
    "Kestrel",
    "Northgate",
    "Ashby",
    "Calder",
    "Pennine",
    "Silverbirch",
    "Marlow",
    "Fenwick",
    "Oakridge",
    "Redcliffe",
    "Thornbury",
    "Westbrook",
    "Alder",
    "Beacon",
    "Castleton",
    "Dunmore",
    "Elmstead",
    "Foxhill",
    "Glenmore",
    "Hawthorn",
    "Ironbridge",
    "Juniper",
    "Kingsway",
    "Larkspur",
    "Meridian",
    "Newhaven",
    "Orchard",
    "Pembroke",
    "Quayside",
    "Riverside",
    "Stonebridge",
    "Tamarind",
    "Upland",
    "Valewood",
    "Whitfield",
    "Yarrow",
    "Zephyr",
    "Ambleside",
    "Bramley",
    "Cobalt",
    "Driftwood",
    "Eastfield",
    "Fairhaven",
    "Granite",
    "Highmoor",
    "Jasper",
    "Keswick",
    "Lindon",
    "Millbrook",
    "Norland",
    "Oxley",
    "Parkhurst",
    "Rowan",
    "Saltmarsh",
    "Tidewater",
    "Underwood",
    "Vantage",
    "Willow",
    "Yeoman",
    "Ashgrove",
    "Birchwood",
    "Cresswell",
    "Dovecote",
    "Everly",
    "Fernside",
    "Goldcrest",
    "Holloway",
    "Inglewood",
    "Kirkby",
    "Lowther",
    "Moorfield",
    "Northwick",
    "Oldfield",
    "Pinecrest",
    "Redwood",
    "Summit",
    "Blackthorn",
    "Coldharbour",
]
_SUFFIXES = [
    ("Freight", "logistics"),
    ("Logistics", "logistics"),
    ("Marine", "shipping"),
    ("Dental", "healthcare"),
    ("Clinic", "healthcare"),
    ("Pharma", "pharmaceuticals"),
    ("Foods", "food processing"),
    ("Bakery", "food processing"),
    ("Brewing", "brewing"),
    ("Dairy", "dairy"),
    ("Engineering", "engineering"),
    ("Plastics", "plastics manufacturing"),
    ("Metals", "metal fabrication"),
    ("Textiles", "textiles"),
    ("Water", "water utility"),
    ("Energy", "energy"),
    ("Hotels", "hospitality"),
    ("Leisure", "leisure centres"),
    ("Builders", "construction"),
    ("Homes", "housing"),
    ("Labs", "laboratory services"),
    ("Analytics", "data services"),
    ("Retail", "retail"),
    ("Farms", "agriculture"),
    ("Growers", "horticulture"),
    ("Council", "local government"),
    ("Academy", "education"),
    ("Hospital Trust", "healthcare"),
    ("Paper Mills", "paper manufacturing"),
    ("Chemicals", "chemicals"),
]
_CITIES = [
    "Leeds",
    "Manchester",
    "Bristol",
    "Glasgow",
    "Cardiff",
    "Belfast",
    "Norwich",
    "Plymouth",
    "Aberdeen",
    "Dundee",
    "York",
    "Exeter",
    "Sheffield",
    "Nottingham",
    "Leicester",
    "Coventry",
    "Derby",
    "Hull",
    "Swansea",
    "Inverness",
    "Dublin",
    "Rotterdam",
    "Antwerp",
    "Lyon",
    "Hamburg",
    "Gdansk",
    "Porto",
    "Bilbao",
    "Turin",
    "Aarhus",
    "Gothenburg",
    "Tampere",
    "Utrecht",
    "Ghent",
    "Lille",
    "Toledo",
    "Boston",
    "Denver",
    "Calgary",
    "Halifax",
    "Portland",
    "Richmond",
    "Omaha",
    "Tucson",
    "Raleigh",
    "Madison",
    "Spokane",
    "Hamilton",
    "Kelowna",
]
_FIRST = [
    "Priya",
    "Tomasz",
    "Aisling",
    "Marcus",
    "Leila",
    "Owen",
    "Sofia",
    "Dmitri",
    "Hannah",
    "Kwame",
    "Ingrid",
    "Rafael",
    "Yusuf",
    "Chloe",
    "Mateo",
    "Freya",
    "Arjun",
    "Niamh",
    "Oskar",
    "Beatriz",
    "Callum",
    "Amara",
    "Lukas",
    "Mei",
    "Declan",
    "Zara",
    "Henrik",
    "Fatima",
    "Gareth",
    "Elena",
    "Joaquin",
    "Ruth",
    "Tobias",
    "Anika",
    "Fergus",
    "Simone",
    "Nikolai",
    "Grace",
    "Emeka",
    "Astrid",
    "Rohan",
    "Isla",
    "Pavel",
    "Lucia",
    "Desmond",
    "Yara",
    "Felix",
    "Maeve",
    "Idris",
    "Camille",
    "Bruno",
    "Saoirse",
    "Viktor",
    "Noor",
    "Ewan",
    "Paloma",
    "Stellan",
    "Keziah",
    "Anders",
    "Rosalind",
]
_LAST = [
    "Natarajan",
    "Kowalski",
    "Brennan",
    "Okafor",
    "Haddad",
    "Price",
    "Marino",
    "Volkov",
    "Fischer",
    "Mensah",
    "Lindqvist",
    "Duarte",
    "Aziz",
    "Moreau",
    "Alvarez",
    "Sorensen",
    "Mehta",
    "Gallagher",
    "Nyberg",
    "Carvalho",
    "Fraser",
    "Adeyemi",
    "Becker",
    "Zhang",
    "Doyle",
    "Rahman",
    "Halvorsen",
    "Siddiqui",
    "Llewellyn",
    "Petrova",
    "Ibarra",
    "Levy",
    "Hartmann",
    "Kapoor",
    "Murray",
    "Rossi",
    "Sokolov",
    "Whitaker",
    "Obi",
    "Eriksen",
    "Banerjee",
    "Campbell",
    "Novak",
    "Serrano",
    "Achterberg",
    "Quinlan",
    "Farouk",
    "Lindgren",
    "Pryce",
    "Castellano",
    "Hughes",
    "Tanaka",
    "Delacroix",
]
_PLANS = [
    ("Essentials", "next business day response", "no uptime credit"),
    ("Professional", "8-hour response", "99.5% uptime with 5% service credit"),
    ("Premier", "4-hour response", "99.9% uptime with 10% service credit"),
    ("Enterprise", "1-hour response around the clock", "99.95% uptime with 15% service credit"),
]
_MONTHS = list(calendar.month_name)[1:]

_BRANDS = [
    "Vantor",
    "Aquilo",
    "Nexa",
    "Corvid",
    "Helix",
    "Strata",
    "Lumen",
    "Orbis",
    "Pylon",
    "Quanta",
    "Ridgeline",
    "Solace",
    "Tessel",
    "Umbra",
    "Vireo",
    "Wexford",
    "Xylo",
    "Yardley",
    "Zenith",
    "Arcus",
    "Borealis",
    "Cinder",
    "Dynamo",
    "Ember",
    "Fathom",
]


@dataclass(frozen=True)
class _Category:
    name: str
    function: str
    specs: tuple[str, ...]
    install: tuple[str, ...]
    tasks: tuple[str, ...]
    issues: tuple[tuple[str, str, str, str], ...]  # summary, symptom, cause, fix


_CATEGORIES = [
    _Category(
        "pump controller",
        "starts, stops and sequences duty and standby pumps from level or pressure setpoints",
        (
            "supply 24 V DC or 230 V AC",
            "six relay outputs rated 5 A",
            "Modbus RTU and Modbus TCP",
            "IP65 enclosure",
        ),
        ("DIN-rail mounting inside the motor control panel", "shielded cable for the level transducer input"),
        ("configure duty rotation", "set the dry-run protection threshold", "restore factory defaults"),
        (
            (
                "pumps short-cycling",
                "the duty pump starts and stops every few seconds",
                "a hysteresis band set too narrow",
                "widened the start/stop band to 300 mm",
            ),
            (
                "dry-run alarm on a full sump",
                "the dry-run alarm trips although the sump is full",
                "a fouled level probe",
                "cleaned the probe and recalibrated the zero point",
            ),
            (
                "standby pump never rotates",
                "the standby pump has not run for weeks",
                "duty rotation disabled after a firmware update",
                "re-enabled weekly rotation in the sequencing menu",
            ),
        ),
    ),
    _Category(
        "flow sensor",
        "measures volumetric flow in pipes from 25 to 600 mm with an electromagnetic sensing tube",
        (
            "accuracy ±0.4% of reading",
            "4-20 mA and pulse outputs",
            "PTFE liner",
            "flow velocity up to 10 m/s",
        ),
        ("five pipe diameters of straight run upstream", "earthing rings on plastic pipework"),
        ("recalibrate the zero flow reading", "change the pulse scaling", "check the liner for wear"),
        (
            (
                "flow reading drifting",
                "the totaliser drifts by several cubic metres a day",
                "air entrained in a partly filled pipe",
                "moved the sensor to a section that stays full",
            ),
            (
                "negative flow at night",
                "small negative flow appears when the line is idle",
                "missing earthing on a plastic pipe",
                "fitted earthing rings and re-zeroed",
            ),
            (
                "noisy signal near drives",
                "the 4-20 mA signal jumps when the drives run",
                "signal cable run beside motor cables",
                "rerouted the cable and grounded the shield at one end",
            ),
        ),
    ),
    _Category(
        "telemetry gateway",
        "collects readings from site equipment and forwards them over 4G or Ethernet to the Telemetry Hub",
        (
            "LTE Cat-4 modem with dual SIM",
            "eight digital inputs",
            "store-and-forward buffer for 30 days",
            "-30 to 70 °C operation",
        ),
        ("external antenna on metal kiosks", "APN settings from the SIM provider"),
        ("switch the APN", "replace the SIM card", "upgrade the gateway firmware"),
        (
            (
                "gateway offline after SIM swap",
                "the gateway stopped reporting after the SIM was replaced",
                "the APN of the new SIM not configured",
                "entered the carrier APN and rebooted",
            ),
            (
                "data gaps every night",
                "readings are missing between 01:00 and 03:00",
                "the scheduled firmware check rebooting the modem",
                "moved the maintenance window and enabled buffering",
            ),
            (
                "weak signal in kiosk",
                "signal strength below -105 dBm inside the kiosk",
                "internal antenna in a steel enclosure",
                "fitted an external antenna on the kiosk roof",
            ),
        ),
    ),
    _Category(
        "pressure transmitter",
        "reports line pressure from 0-16 bar with a ceramic diaphragm",
        (
            "accuracy ±0.25% of span",
            "HART on 4-20 mA",
            "stainless steel 316L wetted parts",
            "surge protection to 1 kV",
        ),
        ("isolation valve and snubber on pulsating lines", "mounting above the tapping point on gas lines"),
        ("re-range the transmitter", "perform a zero trim", "replace the diaphragm seal"),
        (
            (
                "pressure reading frozen",
                "the reading sticks at the same value for hours",
                "a blocked impulse line",
                "flushed the impulse line and fitted a snubber",
            ),
            (
                "spikes after pump starts",
                "pressure spikes of several bar show on pump start",
                "water hammer reaching the diaphragm",
                "added damping and a soft-start ramp",
            ),
        ),
    ),
    _Category(
        "valve actuator",
        "drives quarter-turn and multi-turn valves with position feedback",
        (
            "torque 60 to 2,000 Nm",
            "Profibus DP or Modbus",
            "manual override handwheel",
            "position accuracy 0.5%",
        ),
        ("set end limits before first motorised operation", "coupling adaptor matched to the valve stem"),
        ("set the open and closed limits", "adjust torque switch settings", "calibrate position feedback"),
        (
            (
                "actuator trips on torque",
                "the actuator stops half way and raises a torque fault",
                "a seized valve spindle",
                "freed and greased the spindle and reset the torque limit",
            ),
            (
                "position feedback wrong",
                "the SCADA shows 40% open when the valve is shut",
                "feedback potentiometer slipping",
                "replaced the potentiometer gear and recalibrated",
            ),
        ),
    ),
    _Category(
        "leak detector",
        "listens for leak noise on distribution mains and correlates between loggers",
        (
            "acoustic sensor with 0.5 Hz to 3 kHz band",
            "ten-year lithium battery",
            "magnetic mounting",
            "nightly upload over NB-IoT",
        ),
        ("mount on valves or hydrants at no more than 400 m spacing", "avoid pressure reducing valves"),
        ("correlate two loggers", "change the listening schedule", "replace the battery pack"),
        (
            (
                "false leak alarms near PRV",
                "loggers next to a pressure reducing valve report leaks every night",
                "valve noise mistaken for a leak",
                "raised the noise threshold and moved the logger",
            ),
            (
                "logger not uploading",
                "a logger has not uploaded for four nights",
                "NB-IoT coverage lost after a network change",
                "switched the logger to the fallback network",
            ),
        ),
    ),
    _Category(
        "water quality probe",
        "measures chlorine, turbidity, pH and conductivity in treated water",
        (
            "free chlorine 0-5 mg/l",
            "turbidity 0-100 NTU",
            "self-cleaning wiper",
            "flow cell with sample bypass",
        ),
        ("sample line under 10 m from the tapping", "constant sample flow of 30 to 60 l/h"),
        ("calibrate the chlorine sensor", "replace the pH electrode", "clean the turbidity optics"),
        (
            (
                "chlorine reading too low",
                "the probe reads 0.2 mg/l while grab samples show 0.8",
                "an exhausted membrane cap",
                "replaced the membrane cap and electrolyte",
            ),
            (
                "turbidity spikes",
                "turbidity jumps above 5 NTU for a few minutes",
                "air bubbles in the flow cell",
                "fitted a debubbler and reduced sample flow",
            ),
        ),
    ),
    _Category(
        "data logger",
        "records analogue and pulse channels at intervals from one second to one day",
        (
            "four analogue and two pulse channels",
            "four million readings of memory",
            "IP68 housing",
            "battery life of five years at 15-minute logging",
        ),
        ("secure the logger above flood level", "seal unused cable glands"),
        ("change the logging interval", "export readings to CSV", "set alarm thresholds"),
        (
            (
                "battery draining fast",
                "the battery dropped from 80% to 10% in a month",
                "logging interval left at one second after commissioning",
                "set the interval back to 15 minutes",
            ),
            (
                "clock drift in readings",
                "timestamps are several minutes out",
                "time sync disabled",
                "enabled automatic time sync from the Telemetry Hub",
            ),
        ),
    ),
    _Category(
        "HMI panel",
        "shows alarms and trends and lets operators change setpoints at the plant",
        (
            "10-inch touch screen",
            "user roles with PIN login",
            "alarm history of 10,000 events",
            "VNC remote view",
        ),
        ("panel cut-out 260 × 200 mm", "UPS-backed supply"),  # noqa: RUF001
        ("add an operator account", "export the alarm history", "change screen timeout"),
        (
            (
                "touch screen unresponsive",
                "the touch screen ignores presses in the lower half",
                "a cracked digitiser",
                "replaced the touch screen under warranty",
            ),
            (
                "operators locked out",
                "all operator PINs rejected after a power cut",
                "user database corrupted on unclean shutdown",
                "restored users from backup and fitted a UPS",
            ),
        ),
    ),
    _Category(
        "variable speed drive",
        "controls pump and fan motor speed from 0.75 to 250 kW",
        (
            "built-in EMC filter",
            "PID controller for pressure control",
            "safe torque off input",
            "ambient up to 50 °C",
        ),
        ("clearance of 100 mm above and below for cooling", "motor cable under 50 m without output filter"),
        ("tune the PID loop", "set the motor nameplate data", "read the fault log"),
        (
            (
                "drive tripping on overcurrent",
                "the drive trips on overcurrent during acceleration",
                "an acceleration ramp that is too short",
                "lengthened the ramp to 10 s",
            ),
            (
                "drive overheating",
                "heatsink temperature alarms each afternoon",
                "blocked cooling fan filter",
                "cleaned the filter and scheduled monthly checks",
            ),
        ),
    ),
    _Category(
        "level sensor",
        "measures levels in tanks, wet wells and channels with a radar beam",
        ("80 GHz radar", "range up to 30 m", "accuracy ±2 mm", "Bluetooth set-up from a phone"),
        ("mount away from the inflow and from ladders", "aim perpendicular to the surface"),
        ("map out false echoes", "set tank geometry", "pair the sensor with the set-up app"),
        (
            (
                "level jumps to full",
                "the level reads 100% while the tank is half empty",
                "a false echo from a ladder rung",
                "mapped out the false echo and re-aimed the sensor",
            ),
            (
                "foam causing lost echo",
                "the sensor reports lost echo during aeration",
                "thick foam absorbing the radar signal",
                "enabled foam mode and lowered the sensor",
            ),
        ),
    ),
    _Category(
        "SCADA software licence",
        "supervises sites, alarms and reports from the control room",
        (
            "unlimited tags on Enterprise licences",
            "redundant servers with automatic failover",
            "OPC UA client and server",
            "role-based access with audit trail",
        ),
        ("installation on Windows Server 2022", "licence dongle or cloud licence"),
        ("add a site to the alarm rota", "schedule a monthly report", "rotate the service account password"),
        (
            (
                "alarms not reaching on-call",
                "out-of-hours alarms did not page the on-call engineer",
                "an expired SMS gateway credential",
                "renewed the credential and added a test alarm",
            ),
            (
                "reports missing data",
                "the monthly compliance report has empty columns",
                "historian archive full",
                "extended archive storage and rebuilt the report",
            ),
            (
                "licence expired warning",
                "the SCADA shows a licence expiry banner",
                "annual licence not renewed in the portal",
                "applied the renewed licence key",
            ),
        ),
    ),
]

_GENERIC_ISSUES = [
    (
        "invoice query",
        "the customer queried an invoice line for support hours",
        "hours billed against the wrong contract",
        "issued a credit note and corrected the contract code",
    ),
    (
        "portal login failure",
        "users cannot log in to the Customer Portal",
        "single sign-on certificate expired at the customer",
        "the customer renewed the certificate; we cleared cached sessions",
    ),
    (
        "training request",
        "the customer asked for operator training for new staff",
        "staff turnover at two sites",
        "booked a remote training session and sent the user guides",
    ),
    (
        "delivery delayed",
        "a spare parts order arrived nine days late",
        "stock shortage at the regional warehouse",
        "expedited the order and waived the carriage charge",
    ),
    (
        "report export failing",
        "CSV exports from the portal time out",
        "export range of several years",
        "advised monthly exports and raised a product defect",
    ),
    (
        "user access change",
        "the customer asked to remove a departed engineer's access",
        "staff leaver",
        "disabled the account and confirmed in writing",
    ),
    (
        "warranty claim",
        "the customer claimed a failed unit under warranty",
        "a manufacturing fault in the power supply",
        "shipped a replacement unit and collected the faulty one",
    ),
    (
        "contract question",
        "the customer asked what their support contract covers",
        "unclear scope of on-site visits",
        "sent the service schedule and a summary of entitlements",
    ),
]

_SERVICES = [
    "Telemetry Hub",
    "Customer Portal",
    "Billing Engine",
    "Alerting Service",
    "Data Export API",
    "Mobile Field App",
    "SSO Gateway",
    "Firmware Update Service",
    "Reporting Warehouse",
    "SMS Notifier",
    "Parts Ordering",
    "Remote Access Broker",
]
_REGIONS = ["eu-west", "uk-south", "us-east", "ca-central", "eu-north"]
_ROOT_CAUSES = [
    ("a certificate expired on the load balancer", "automated certificate renewal with a 30-day alert"),
    ("a database failover took longer than planned", "tuned failover health checks and added a runbook step"),
    (
        "a bad configuration change to the message queue",
        "peer review for queue configuration and a staged rollout",
    ),
    ("disk space exhausted on the ingest nodes", "disk usage alerts at 75% and log rotation"),
    ("a third-party SMS provider outage", "a second SMS provider with automatic fallback"),
    ("a memory leak in release 4.12", "rolled back and added a soak test to the release pipeline"),
    ("a DNS misconfiguration during a migration", "DNS changes now go through the change board"),
    ("an expired API key for the mapping provider", "key expiry monitoring"),
    ("network congestion at the hosting provider", "a second availability zone for ingest"),
    ("a schema migration that locked the readings table", "online migrations and a maintenance window"),
    (
        "a firmware release that rebooted gateways in a loop",
        "canary firmware rollout to 2% of gateways first",
    ),
    ("a cron job that purged active sessions", "session purge limited to expired sessions with a test"),
]

_POLICY_AREAS: dict[str, tuple[str, ...]] = {
    "Refunds and credit notes": ("refund", "credit note", "cancellation", "pro-rata", "invoice dispute"),
    "Travel and expenses": ("mileage", "hotel", "per diem", "receipt", "economy fare"),
    "Data retention": ("retention period", "deletion", "archive", "legal hold", "backup copy"),
    "Information security": (
        "encryption",
        "multi-factor authentication",
        "patching",
        "vulnerability",
        "laptop",
    ),
    "Remote working": ("home office", "equipment allowance", "working hours", "VPN", "ergonomic assessment"),
    "Procurement": ("purchase order", "quotation", "supplier", "tender", "budget holder"),
    "Customer complaints": ("complaint", "acknowledgement", "root cause", "ombudsman", "resolution letter"),
    "Service credits": ("service credit", "uptime", "measurement period", "claim window", "exclusion"),
    "Warranty returns": (
        "return authorisation",
        "replacement unit",
        "fault report",
        "carriage",
        "refurbished",
    ),
    "Acceptable use": (
        "personal use",
        "social media",
        "software installation",
        "monitoring",
        "removable media",
    ),
    "Incident response": (
        "severity",
        "incident commander",
        "status page",
        "post-incident review",
        "customer notice",
    ),
    "Supplier onboarding": (
        "due diligence",
        "insurance certificate",
        "bank details",
        "sanctions screening",
        "trial order",
    ),
    "Anti-bribery": ("gift", "hospitality", "facilitation payment", "register", "public official"),
    "Site health and safety": ("permit to work", "confined space", "lone working", "PPE", "risk assessment"),
    "On-call and overtime": ("on-call allowance", "call-out", "rest period", "rota", "time off in lieu"),
    "Discount approval": ("discount", "margin", "deal desk", "multi-year term", "price book"),
    "Contract renewals": ("renewal notice", "price uplift", "auto-renewal", "termination", "notice period"),
    "Escalations": (
        "escalation level",
        "duty manager",
        "executive sponsor",
        "update cadence",
        "major account",
    ),
    "Equipment loans": ("loan unit", "loan agreement", "demo stock", "return date", "damage charge"),
    "Privacy requests": (
        "subject access request",
        "erasure",
        "identity check",
        "response deadline",
        "data protection officer",
    ),
}
_POLICY_REGIONS = [("UK", "£", 1.0), ("EU", "€", 1.15), ("North America", "$", 1.25)]
_CLAUSES = [
    "Purpose and scope",
    "Definitions",
    "Eligibility",
    "Limits and thresholds",
    "Approval",
    "Exceptions",
    "Evidence and records",
    "Timelines",
    "Responsibilities",
    "Breaches and review",
]

_QBR_TOPICS = [
    "expansion to two more treatment sites",
    "a move from on-premise SCADA to the hosted service",
    "replacing ageing flow meters before the regulator's audit",
    "a pilot of acoustic leak detection on the trunk main",
    "consolidating telemetry onto 4G gateways",
    "training for a new operations team",
    "a price uplift at renewal",
    "energy savings from variable speed drives",
    "better alarm handling out of hours",
    "a data export into their own reporting platform",
]
_QBR_RISKS = [
    "a competitor is offering a cheaper telemetry contract",
    "the sponsor is leaving the company in the spring",
    "two unresolved P2 tickets are souring the relationship",
    "their budget for next year has not been approved",
    "they feel response times slipped during the outage",
    "none; the account is healthy",
]


# -- the corpus -------------------------------------------------------------------------------


@dataclass
class Product:
    name: str
    category: str
    sku: str
    doc_id: str
    tasks: list[str] = field(default_factory=list)


@dataclass
class Ticket:
    id: str
    product: str
    summary: str
    symptom: str


@dataclass
class Customer:
    name: str
    account_id: str
    industry: str
    city: str
    plan: str
    manager: str
    contact: str
    products: list[str]
    renewal: str
    tickets: list[Ticket] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)


@dataclass
class Policy:
    title: str
    area: str
    region: str
    doc_id: str
    terms: list[str]


@dataclass
class Incident:
    id: str
    service: str
    region: str
    customers: list[str]


@dataclass
class Corpus:
    """The documents by source, with the entity tables they were generated from."""

    n_chunks: int
    seed: int
    documents: dict[str, list[Document]]
    chunks_per_source: dict[str, int]
    customers: list[Customer]
    products: list[Product]
    policies: list[Policy]
    incidents: list[Incident]

    def signature(self) -> dict[str, object]:
        digest = hashlib.sha256()
        for source, documents in self.documents.items():
            for doc in documents:
                digest.update(f"{source}\0{doc.id}\0{doc.title}\0{doc.text}\0".encode())
        return {
            "version": CORPUS_VERSION,
            "n_chunks": self.n_chunks,
            "seed": self.seed,
            "chunks_per_source": self.chunks_per_source,
            "content_sha256": digest.hexdigest(),
        }


def _a(noun: str) -> str:
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


def _count_chunks(doc: Document) -> int:
    return len(chunk_text(doc.text))  # the default chunking settings, as the index uses


class _Builder:
    def __init__(self, n_chunks: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n_chunks = n_chunks
        self.seed = seed
        self.documents: dict[str, list[Document]] = {s: [] for s in SOURCES}
        self.chunks: dict[str, int] = dict.fromkeys(SOURCES, 0)

    @property
    def total(self) -> int:
        return sum(self.chunks.values())

    def add(self, source: str, doc_id: str, title: str, text: str, **metadata: str | int) -> None:
        doc = Document(
            id=doc_id,
            title=title,
            text=text,
            uri=f"synthetic://{source}/{doc_id}",
            metadata={"kind": doc_id.split("/")[0], **metadata},
        )
        self.documents[source].append(doc)
        self.chunks[source] += _count_chunks(doc)

    def person(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def date(self, years: Sequence[int] = (2023, 2024, 2025)) -> str:
        return f"{self.rng.randint(1, 28)} {self.rng.choice(_MONTHS)} {self.rng.choice(years)}"


def generate_corpus(n_chunks: int = 10_000, seed: int = 7) -> Corpus:
    """Exactly ``n_chunks`` passages, deterministically from ``seed``."""
    if n_chunks < 200:
        raise ValueError("the corpus needs at least 200 passages")
    b = _Builder(n_chunks, seed)
    rng = b.rng
    n_customers = max(8, n_chunks // 25)
    n_products = max(6, n_chunks // 85)
    n_policy_areas = max(3, min(len(_POLICY_AREAS), n_chunks // 500))
    n_incidents = max(5, n_chunks // 25)
    n_articles = max(10, n_chunks // 20)

    products = _products(b, n_products)
    policies = _policies(b, n_policy_areas)
    customers = _customers(b, n_customers, products)
    incidents = _incidents(b, n_incidents, customers)
    _articles(b, n_articles, products)
    # Support tickets fill the rest, spread unevenly over the customers; then one review note
    # per customer (one passage each, so the total comes out exact).
    weights = [rng.lognormvariate(0, 0.6) for _ in customers]
    counter = 41_000
    while b.total < n_chunks - len(customers):
        customer = rng.choices(customers, weights)[0]
        counter += rng.randint(1, 9)
        _ticket(b, customer, products, f"TCK-{counter}")
    for customer in customers:
        _qbr_note(b, customer)
    if b.total != n_chunks:  # every ticket and note is one passage, so this cannot happen
        raise AssertionError(f"generated {b.total} passages, wanted {n_chunks}")
    for source, documents in b.documents.items():
        if len({d.id for d in documents}) != len(documents):
            raise AssertionError(f"duplicate document ids in {source}")
    return Corpus(n_chunks, seed, b.documents, dict(b.chunks), customers, products, policies, incidents)


def _products(b: _Builder, n: int) -> list[Product]:
    rng = b.rng
    names: set[str] = set()
    products: list[Product] = []
    while len(products) < n:
        category = _CATEGORIES[len(products) % len(_CATEGORIES)]
        name = f"{rng.choice(_BRANDS)} {rng.choice('ABCDEFGHKLMPRSTVX')}{rng.choice([100, 120, 200, 250, 300, 350, 400, 500, 600, 700, 800, 900])}"
        sku = f"{name.split()[0][:3].upper()}-{rng.randint(1000, 9999)}"
        if name in names or sku in names:
            continue
        names.update((name, sku))
        doc_id = f"sheet/{sku.lower()}"
        launched = rng.randint(2016, 2024)
        specs = list(category.specs)
        rng.shuffle(specs)
        predecessor = f"{name.split()[0]} {rng.choice('ABCDEFGHKLMPRSTVX')}{rng.randint(1, 9) * 10}"
        sections = {
            "Overview": (
                f"The {name} ({sku}) is a {category.name} that {category.function}. It was launched in "
                f"{launched} to replace the {predecessor} and is sold on its own or as part of a monitoring "
                f"bundle. Typical customers run it in {rng.choice(_SUFFIXES)[1]} and "
                f"{rng.choice(_SUFFIXES)[1]} sites; most installations need no more than half a day of commissioning."
            ),
            "Specifications": (
                f"Key figures for the {name}: {'; '.join(specs)}. Weight {rng.randint(4, 90) / 10:.1f} kg. "
                f"Mean time between failures is rated at {rng.randint(8, 25) * 10_000:,} hours. Certified to "
                f"{rng.choice(['CE and UKCA', 'CE, UKCA and UL', 'ATEX zone 2', 'WRAS and CE'])}. Firmware "
                f"{rng.randint(2, 6)}.{rng.randint(0, 19)} is current."
            ),
            "Installation": (
                f"Install the {name} following the quick-start card in the box. Plan for "
                f"{category.install[0]}, and {category.install[1]}. Commissioning takes "
                f"{rng.randint(1, 4)} hours with the set-up app. Keep the serial number label visible: "
                "support needs it for warranty and firmware questions."
            ),
            "Compatibility": (
                f"The {name} works with the Telemetry Hub, the Customer Portal and SCADA systems that speak "
                f"{rng.choice(['Modbus TCP', 'OPC UA', 'DNP3', 'MQTT'])}. It pairs with the "
                f"{rng.choice(_BRANDS)} range of {rng.choice(_CATEGORIES).name}s. Older {predecessor} "
                f"accessories {rng.choice(['fit without adaptors', 'need the adaptor kit ADP-' + str(rng.randint(10, 99)), 'are not compatible'])}."
            ),
            "Warranty and support": (
                f"The {name} carries a {rng.choice([2, 3, 5])}-year warranty against defects in materials "
                f"and workmanship. Faulty units are replaced under a return authorisation; consumables and "
                f"damage from flooding or lightning are excluded. Spare parts are stocked for "
                f"{rng.choice([7, 10, 12])} years after the last sale."
            ),
        }
        text = f"# {name} product sheet\n\n" + "\n\n".join(f"## {h}\n\n{t}" for h, t in sections.items())
        b.add("products", doc_id, f"{name} product sheet", text, product=name, category=category.name)
        products.append(Product(name, category.name, sku, doc_id, list(category.tasks)))
    return products


def _policies(b: _Builder, n_areas: int) -> list[Policy]:
    rng = b.rng
    policies: list[Policy] = []
    for area, terms in list(_POLICY_AREAS.items())[:n_areas]:
        for region, currency, factor in _POLICY_REGIONS:
            title = f"{area} policy ({region})"
            doc_id = f"policy/{area.lower().replace(' ', '-')}-{region.lower().replace(' ', '-')}"
            owner = b.person()
            version = f"{rng.randint(2, 7)}.{rng.randint(0, 4)}"
            t = list(terms)
            amount = int(rng.choice([250, 500, 1000, 2500, 5000]) * factor)
            days = rng.choice([5, 10, 14, 30, 60, 90])
            clause_text = {
                "Purpose and scope": f"This policy sets out how we handle {t[0]} and {t[1]} matters in {region}. It applies to every employee, contractor and agency worker, and to work done for customers on our behalf. Version {version}, owned by {owner}.",
                "Definitions": f"In this policy {_a(t[0])} means any {t[0]} raised through an approved channel; {_a(t[2])} means {_a(t[2])} agreed in writing; and the policy owner is {owner} or a delegate named on the intranet page for {area.lower()}.",
                "Eligibility": f"{_a(t[0]).capitalize()} is eligible when it is raised within {days} days and supported by {_a(t[3])}. Staff on probation and contractors follow the same rules, except that contractors route requests through their agency contact first.",
                "Limits and thresholds": f"Items up to {currency}{amount:,} may be approved by a line manager. Between {currency}{amount:,} and {currency}{amount * 4:,} a director approves; above {currency}{amount * 4:,} the {t[4]} needs the finance director and is logged in the central register.",
                "Approval": f"Approval is recorded in the workflow tool before any commitment is made. An approver may not approve their own {t[0]}, nor one raised by someone they report to. Approvals older than {days * 2} days lapse and must be renewed.",
                "Exceptions": f"Exceptions to this policy need written approval from {owner} and are reviewed each quarter. {_a(t[1]).capitalize()} outside these rules is never approved retrospectively unless it was needed to keep a customer site safe or running.",
                "Evidence and records": f"Keep the {t[3]} and the approval together for {rng.choice([3, 6, 7])} years. Records for {region} are stored in the regional document store; copies held in personal mailboxes do not count as records.",
                "Timelines": f"Requests are acknowledged within {rng.choice([1, 2, 3])} working days and decided within {days} days. Where {_a(t[2])} is involved, the requester is told of the outcome in writing with the reason for any refusal.",
                "Responsibilities": f"Line managers apply this policy day to day; finance checks {t[4]} items monthly; {owner} keeps the policy current and answers questions. Everyone is responsible for raising concerns about misuse of {t[1]} arrangements.",
                "Breaches and review": f"A breach of this policy may lead to disciplinary action and, for suppliers, termination. The policy is reviewed every {rng.choice([12, 18, 24])} months or sooner after an audit finding on {t[0]} handling in {region}.",
            }
            body = "\n\n".join(f"## {i}. {c}\n\n{clause_text[c]}" for i, c in enumerate(_CLAUSES, 1))
            b.add("policies", doc_id, title, f"# {title}\n\n{body}", area=area, region=region)
            policies.append(Policy(title, area, region, doc_id, t))
    return policies


def _customers(b: _Builder, n: int, products: list[Product]) -> list[Customer]:
    rng = b.rng
    names = [f"{p} {s}" for p in _PREFIXES for s, _ in _SUFFIXES]
    industries = {f"{p} {s}": i for p in _PREFIXES for s, i in _SUFFIXES}
    rng.shuffle(names)
    if n > len(names):
        raise ValueError(f"at most {len(names)} customers")
    customers = []
    for i, name in enumerate(names[:n]):
        plan, response, uptime = rng.choice(_PLANS)
        used = rng.sample(products, k=min(len(products), rng.randint(2, 4)))
        customer = Customer(
            name=name,
            account_id=f"ACC-{10_000 + i * 7 + rng.randint(0, 6)}",
            industry=industries[name],
            city=rng.choice(_CITIES),
            plan=plan,
            manager=b.person(),
            contact=b.person(),
            products=[p.name for p in used],
            renewal=b.date((2025, 2026)),
        )
        sites = rng.randint(1, 14)
        text = (
            f"# Account profile: {name} ({customer.account_id})\n\n"
            f"{name} is a {customer.industry} customer based in {customer.city} with {sites} "
            f"site{'s' if sites > 1 else ''}, on the {plan} plan since {b.date((2018, 2019, 2020, 2021, 2022))}. "
            f"Account manager: {customer.manager}. Main contact: {customer.contact}, "
            f"{rng.choice(['operations manager', 'head of engineering', 'IT lead', 'facilities manager', 'plant manager'])}. "
            f"Installed products: {', '.join(customer.products)}. Support terms: {response}, {uptime}. "
            f"Contract renews on {customer.renewal}; annual value {rng.randint(8, 240) * 1000:,} GBP."
        )
        b.add(
            "crm", f"account/{customer.account_id.lower()}", f"Account profile: {name}", text, customer=name
        )
        customers.append(customer)
    return customers


def _ticket(b: _Builder, customer: Customer, products: list[Product], ticket_id: str) -> None:
    rng = b.rng
    by_name = {p.name: p for p in products}
    if rng.random() < 0.2:
        summary, symptom, cause, fix = rng.choice(_GENERIC_ISSUES)
        product = rng.choice(customer.products)
    else:
        product = rng.choice(customer.products)
        category = next(c for c in _CATEGORIES if c.name == by_name[product].category)
        summary, symptom, cause, fix = rng.choice(category.issues)
    priority = rng.choice(["P1", "P2", "P2", "P3", "P3", "P4"])
    site = f"{rng.choice(_CITIES)} {rng.choice(['depot', 'works', 'pumping station', 'plant', 'site', 'warehouse'])}"
    agent = b.person()
    days = rng.randint(1, 21)
    outcome = rng.choice(
        [
            "Customer confirmed the fix and the ticket was closed",
            f"Closed after {days} days; a follow-up visit is booked",
            "Resolved remotely; no site visit needed",
            f"Resolved on site by {agent.split()[0]}; parts used were covered by warranty",
            "Customer satisfied; survey score 9 out of 10",
            f"Reopened once, then closed after {days} days",
        ]
    )
    text = (
        f"# Ticket {ticket_id}: {summary} at {customer.name}\n\n"
        f"Opened {b.date()} by {customer.contact} ({customer.name}, {customer.account_id}), priority {priority}, "
        f"product {product}, site {site}. Reported: {symptom}. Engineer {agent} found "
        f"{cause}, and {fix}. {outcome}."
    )
    b.add(
        "crm", f"ticket/{ticket_id.lower()}", f"Ticket {ticket_id}: {summary}", text, customer=customer.name
    )
    customer.tickets.append(Ticket(ticket_id, product, summary, symptom))


def _qbr_note(b: _Builder, customer: Customer) -> None:
    rng = b.rng
    topics = rng.sample(_QBR_TOPICS, 2)
    text = (
        f"# Quarterly review: {customer.name}\n\n"
        f"Met {customer.contact} and two colleagues on {b.date()} with {customer.manager}. They discussed "
        f"{topics[0]} and {topics[1]}. Open tickets: {len(customer.tickets)}. Risk: "
        f"{rng.choice(_QBR_RISKS)}. Next steps: {customer.manager.split()[0]} sends a proposal within "
        f"{rng.randint(1, 4)} weeks and books a site visit to {customer.city}. Renewal on {customer.renewal} "
        f"is {rng.choice(['likely', 'at risk', 'expected with an uplift', 'under negotiation'])}."
    )
    b.add(
        "crm",
        f"review/{customer.account_id.lower()}",
        f"Quarterly review: {customer.name}",
        text,
        customer=customer.name,
    )


def _incidents(b: _Builder, n: int, customers: list[Customer]) -> list[Incident]:
    rng = b.rng
    incidents = []
    for i in range(n):
        service = rng.choice(_SERVICES)
        region = rng.choice(_REGIONS)
        cause, action = rng.choice(_ROOT_CAUSES)
        affected = rng.sample(customers, k=rng.randint(1, 3))
        minutes = rng.randint(6, 420)
        iid = f"INC-{2100 + i * 3 + rng.randint(0, 2)}"
        names = ", ".join(c.name for c in affected)
        text = (
            f"# Incident {iid}: {service} degraded in {region}\n\n"
            f"On {b.date()} the {service} in {region} was {rng.choice(['unavailable', 'degraded', 'slow', 'returning errors'])} "
            f"for {minutes} minutes. Severity {rng.choice(['SEV1', 'SEV2', 'SEV3'])}. Root cause: {cause}. "
            f"Customers affected include {names}. Incident commander {b.person()}. Follow-up: {action}. "
            f"Service credits {'apply under the service credits policy' if minutes > 60 else 'do not apply'}."
        )
        b.add(
            "operations",
            f"incident/{iid.lower()}",
            f"Incident {iid}: {service} in {region}",
            text,
            service=service,
        )
        incident = Incident(iid, service, region, [c.name for c in affected])
        for c in affected:
            c.incidents.append(iid)
        incidents.append(incident)
    return incidents


def _articles(b: _Builder, n: int, products: list[Product]) -> None:
    rng = b.rng
    pairs = [(p, t) for p in products for t in p.tasks]
    rng.shuffle(pairs)
    for i, (product, task) in enumerate(pairs[:n]):
        steps = rng.randint(3, 7)
        text = (
            f"# How to {task} on the {product.name}\n\n"
            f"Applies to the {product.name} ({product.sku}) with firmware {rng.randint(2, 6)}.x. You need "
            f"{rng.choice(['the set-up app', 'a laptop with the service tool', 'the front-panel menu', 'administrator rights in the portal'])} "
            f"and about {rng.choice([5, 10, 15, 30])} minutes. Follow the {steps} steps in the service menu, "
            f"confirm each change, then {rng.choice(['save and reboot', 'check the live reading', 'export the settings', 'log the change in the site book'])}. "
            f"If the {product.category} reports an error, note the code and raise a ticket with support."
        )
        b.add(
            "products",
            f"howto/{product.sku.lower()}-{i}",
            f"How to {task} on the {product.name}",
            text,
            product=product.name,
        )


# -- the index --------------------------------------------------------------------------------


def harvest_settings(data_dir: Path) -> Settings:
    """Settings built in code: the four sources (filesystem connectors on an empty folder, never
    synced; documents arrive through :meth:`Indexer.plant`), default retrieval and guard settings.

    Nothing watches the folder: a served folder's catch-up sync would find it empty and remove
    every planted document."""
    empty = data_dir / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    sources = [
        SourceSettings.model_validate(
            {"name": name, "connector": "filesystem", "description": desc, "path": str(empty)}
        )
        for name, desc in SOURCES.items()
    ]
    return Settings(
        store=StoreSettings(path=data_dir / "index"),
        server=ServerSettings(watch=False, sync_on_start=False),
        sources=sources,
        base_dir=data_dir,
    )


def open_knowledge_base(
    cache_dir: Path,
    n_chunks: int = 10_000,
    seed: int = 7,
    *,
    embedder: Embedder | None = None,
    corpus: Corpus | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[App, Corpus]:
    """The App over the corpus indexed under ``cache_dir`` (built there on first use, reused afterwards)."""
    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    corpus = corpus or generate_corpus(n_chunks, seed)
    cache_dir.mkdir(parents=True, exist_ok=True)
    marker = cache_dir / "corpus.json"
    # The index is of this corpus and of this embedding (a new default backend rebuilds it).
    signature = {
        **corpus.signature(),
        "embedding": harvest_settings(cache_dir).embedding.model_dump(mode="json"),
    }
    state = json.loads(marker.read_text()) if marker.exists() else None
    if (state is None or state.get("corpus") != signature) and (cache_dir / "index").exists():
        say(f"the index in {cache_dir} is not of this corpus; rebuilding it")
        shutil.rmtree(cache_dir / "index")
    app = build_app(harvest_settings(cache_dir), embedder=embedder)
    kb = app.knowledge
    if state is not None and state.get("corpus") == signature and state.get("complete"):
        return app, corpus
    # Resumable: the marker names the corpus being built, and planting skips documents already
    # indexed with the same content.
    marker.write_text(json.dumps({"corpus": signature, "complete": False}, indent=2) + "\n")
    started = time.perf_counter()
    done = 0
    for source, documents in corpus.documents.items():
        for i in range(0, len(documents), 200):
            report = kb.indexer.plant(source, documents[i : i + 200])
            done += report.chunks
            if report.chunks:
                rate = done / (time.perf_counter() - started)
                say(
                    f"indexed {source}: {min(i + 200, len(documents))}/{len(documents)} documents ({rate:.0f} passages/s)"
                )
    sizes = kb.source_sizes()
    if sizes != corpus.chunks_per_source:
        raise RuntimeError(f"index holds {sizes}, expected {corpus.chunks_per_source}")
    build_s = round(time.perf_counter() - started, 1)
    marker.write_text(
        json.dumps({"corpus": signature, "complete": True, "build_s": build_s}, indent=2) + "\n"
    )
    say(f"indexed {corpus.n_chunks} passages in {build_s:.0f} s")
    return app, corpus


def describe(corpus: Corpus) -> dict[str, object]:
    """Sizes for the results file."""
    lengths = [len(c.text) for docs in corpus.documents.values() for d in docs for c in chunk_text(d.text)]
    lengths.sort()
    return {
        "passages": corpus.n_chunks,
        "documents": sum(len(d) for d in corpus.documents.values()),
        "passages_per_source": corpus.chunks_per_source,
        "customers": len(corpus.customers),
        "products": len(corpus.products),
        "policies": len(corpus.policies),
        "incidents": len(corpus.incidents),
        "passage_chars_p10_p50_p90": [
            lengths[len(lengths) // 10],
            lengths[len(lengths) // 2],
            lengths[len(lengths) * 9 // 10],
        ],
    }
