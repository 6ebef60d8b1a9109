"""The sample portal's data: seeded records, in-memory state, fault settings, helpers.

Deterministic for a given seed, so tests can assert exact outcomes.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

EXTENSION = "robo_portal"
PAGE_SIZE = 10
CLAIM_CEILING = 1500.0
MAX_SLOW_SECONDS = 300.0
MAX_HOLD_SECONDS = 600.0

#: What the portal counts per reference (``GET /api/updates``): each is one real
#: application of a change, so a reference counted twice was changed twice. A
#: submission the application refuses (a duplicate file, an invoice already decided,
#: a business error) is an attempt, not an update.
UPDATE_KINDS = {
    "permit_recorded": "a residence-permit file created (/permits/new), by file number",
    "invoice_decided": "an invoice approved or rejected (/invoices/<ref>), by invoice",
    "reminder_sent": "a reminder sent (/outstanding/<ref>/remind), by reminder number "
    "(the item's reference and the ISO week, see reminder_number)",
    "claim_recorded": "an expense claim created (/claims/new), by its claim_ref "
    "(or claim number when none is given)",
    "export_downloaded": "an export CSV downloaded (/exports/download), by UNIT/PERIOD",
}
HOLD_PHASES = ("before", "after")

NATIONALITIES = {
    "DZ": "Algérie", "BR": "Brésil", "CM": "Cameroun", "CN": "Chine", "CI": "Côte d'Ivoire",
    "US": "États-Unis", "HT": "Haïti", "IN": "Inde", "ML": "Mali", "MA": "Maroc",
    "CD": "République démocratique du Congo", "RU": "Russie", "SN": "Sénégal",
    "TN": "Tunisie", "TR": "Turquie", "UA": "Ukraine", "VN": "Viêt Nam",
}  # fmt: skip
PERMIT_TYPES = {
    "salarie": "Salarié", "etudiant": "Étudiant", "famille": "Vie privée et familiale",
    "visiteur": "Visiteur",
}  # fmt: skip
CLAIM_TYPES = {
    "transport": "Frais de transport", "repas": "Frais de repas",
    "hebergement": "Frais d'hébergement", "formation": "Frais de formation",
}  # fmt: skip
EMPLOYEES = {
    "A10234": "Sophie Martin", "A10571": "Karim Benali", "A11002": "Claire Lefèvre",
    "A11348": "Thomas Nguyen", "A11760": "Julie Moreau", "A12015": "Olivier Diallo",
    "A12377": "Nathalie Rousseau", "A12808": "Pierre Garnier",
}  # fmt: skip
UNITS = {
    "DIRIM-75": "Direction de l'immigration et de l'intégration - Paris",
    "BSE-69": "Bureau du séjour des étrangers - Rhône",
    "BSE-13": "Bureau du séjour des étrangers - Bouches-du-Rhône",
    "SCN-33": "Service des cartes et naturalisations - Gironde",
    "BSE-59": "Bureau du séjour des étrangers - Nord",
    "SAE-67": "Service d'accueil des étrangers - Bas-Rhin",
}
# Permit files already recorded before any bot runs (one appears in the sample input).
SEEDED_PERMITS = [
    ("2024-75-00117", "HADDAD", "Yasmine", "1992-05-03", "DZ", "salarie"),
    ("2024-75-00118", "OKAFOR", "Daniel", "1988-11-21", "CM", "famille"),
]
# number -> (label, initial remaining amount)
COMMITMENTS = {
    "EJ-2024-0101": ("Fournitures de bureau 2024", 10000.00),
    "EJ-2024-0102": ("Maintenance informatique", 5000.00),
    "EJ-2024-0103": ("Restauration administrative", 2500.00),
    "EJ-2024-0104": ("Nettoyage des locaux", 800.00),
    "EJ-2024-0105": ("Prestations de sécurité et fournitures", 12000.00),
}
# ref, supplier, amount, commitment. 004 and 009 name unknown commitments; 005 and 010
# exceed their commitment whatever the order of processing; the others always fit.
INVOICES = [
    ("FAC-2024-001", "Papeterie du Centre", 1200.00, "EJ-2024-0101"),
    ("FAC-2024-002", "Informatique Services SA", 4300.00, "EJ-2024-0102"),
    ("FAC-2024-003", "Nettoyage Pro", 650.00, "EJ-2024-0104"),
    ("FAC-2024-004", "Transports Martin", 980.00, "EJ-2024-0999"),
    ("FAC-2024-005", "Nettoyage Pro", 1500.00, "EJ-2024-0104"),
    ("FAC-2024-006", "Restauration collective du Sud", 2300.00, "EJ-2024-0103"),
    ("FAC-2024-007", "Papeterie du Centre", 540.50, "EJ-2024-0101"),
    ("FAC-2024-008", "Sécurité Gardiennage Services", 7600.00, "EJ-2024-0105"),
    ("FAC-2024-009", "Maintenance Bâtiment Plus", 320.00, "EJ-2023-0042"),
    ("FAC-2024-010", "Restauration collective du Sud", 3100.00, "EJ-2024-0103"),
    ("FAC-2024-011", "Fournitures médicales de l'Ouest", 1890.00, "EJ-2024-0105"),
    ("FAC-2024-012", "Papeterie du Centre", 2100.00, "EJ-2024-0101"),
]
# 23 overdue items; indices 5, 13 and 22 (1-based) have no manager e-mail.
_SUBJECTS = [
    "Rapport d'activité annuel", "Réponse au courrier du préfet", "Bilan social",
    "Mise à jour du plan de continuité", "Inventaire du mobilier", "Note de conjoncture",
    "Réponse à une question écrite", "Compte rendu de comité", "Fiches de poste",
    "Indicateurs de performance", "Plan de formation", "Convention de partenariat",
]  # fmt: skip
_MANAGERS = [
    ("Claire Dupont", "c.dupont"), ("Marc Leroy", "m.leroy"), ("Aïcha Traoré", "a.traore"),
    ("Jean Petit", "j.petit"), ("Hélène Robert", "h.robert"), ("Luc Bernard", "l.bernard"),
    ("Sarah Cohen", "s.cohen"),
]  # fmt: skip
NO_MANAGER = {5, 13, 22}
OUTSTANDING_COUNT = 23


@dataclass
class PortalConfig:
    username: str = "agent"
    password: str = "demo-password"
    latency_ms: int = 0
    failure_rate: float = 0.0
    seed: int = 42


@dataclass
class Faults:
    failure_rate: float = 0.0
    latency_ms: int = 0
    fail_next: int = 0
    served: int = 0  # 503 answers given so far
    # One-shot: the next update for this reference is held this long, "before" it is
    # applied (then answered 503, changing nothing) or "after" (then answered normally).
    hold: dict[str, Any] | None = None
    holding: list[str] = field(default_factory=list)  # references held right now


def parse_hold(value: Any) -> dict[str, Any] | None:
    """``{"reference": "2024-75-00203", "seconds": 30, "phase": "after"}`` or None."""
    if value is None:
        return None
    if not isinstance(value, dict) or not str(value.get("reference", "")).strip():
        raise ValueError('hold takes {"reference": REF, "seconds": N, "phase": "before|after"}')
    unknown = sorted(set(value) - {"reference", "seconds", "phase"})
    if unknown:
        raise ValueError(f"hold: unknown key(s) {', '.join(unknown)}")
    seconds = float(value.get("seconds", 30))
    if not 0 < seconds <= MAX_HOLD_SECONDS:
        raise ValueError(f"hold.seconds must be above 0 and at most {MAX_HOLD_SECONDS:g}")
    phase = str(value.get("phase", "after"))
    if phase not in HOLD_PHASES:
        raise ValueError(f"hold.phase must be one of {', '.join(HOLD_PHASES)}")
    return {"reference": str(value["reference"]).strip(), "seconds": seconds, "phase": phase}


@dataclass
class PortalState:
    """Everything the portal remembers; guarded by ``lock``."""

    config: PortalConfig
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=random.Random)
    permits: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    commitments: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    outstanding: dict[str, dict[str, Any]] = field(default_factory=dict)
    reminders: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    # What the lab page (/lab) received: cases, comments, status checks, help read.
    lab: list[dict[str, Any]] = field(default_factory=list)
    # kind -> reference -> count: real updates, and every submission the application saw.
    updates: dict[str, dict[str, int]] = field(default_factory=dict)
    attempts: dict[str, dict[str, int]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        with self.lock:
            cfg = self.config
            self.release_held()
            self.faults = Faults(cfg.failure_rate, cfg.latency_ms, 0, 0)
            self.rng = random.Random(cfg.seed)
            self.permits = {}
            for number, last, first, born, nat, kind in SEEDED_PERMITS:
                self.permits[number] = permit_record(
                    number, last, first, born, nat, kind, seeded=True
                )
            self.commitments = {
                number: {"number": number, "label": label, "initial": amount, "remaining": amount}
                for number, (label, amount) in COMMITMENTS.items()
            }
            self.invoices = {
                ref: {
                    "reference": ref,
                    "supplier": supplier,
                    "amount": amount,
                    "commitment": commitment,
                    "status": "À traiter",
                    "reason": "",
                }
                for ref, supplier, amount, commitment in INVOICES
            }
            self.outstanding = {}
            for i in range(1, OUTSTANDING_COUNT + 1):
                name, login = _MANAGERS[(i * 3) % len(_MANAGERS)]
                ref = f"REL-2024-{i:03d}"
                self.outstanding[ref] = {
                    "reference": ref,
                    "subject": _SUBJECTS[(i * 5) % len(_SUBJECTS)],
                    "manager": "" if i in NO_MANAGER else name,
                    "email": "" if i in NO_MANAGER else f"{login}@interieur.example",
                    "days_late": 5 + (i * 17) % 60,
                }
            self.decisions, self.reminders, self.claims, self.exports = [], [], [], []
            self.lab = []
            self.updates = {kind: {} for kind in UPDATE_KINDS}
            self.attempts = {kind: {} for kind in UPDATE_KINDS}

    def release_held(self) -> None:
        """Wake every held request now (a reset, or ``{"release": true}``)."""
        with self.lock:
            self.release.set()
            self.release = threading.Event()

    def attempted(self, kind: str, reference: str) -> None:
        """A submission reached the application (whether or not it is refused)."""
        with self.lock:
            counts = self.attempts[kind]
            counts[reference] = counts.get(reference, 0) + 1

    def updated(self, kind: str, reference: str) -> None:
        """The change was applied; call under ``lock`` with the change itself."""
        with self.lock:
            counts = self.updates[kind]
            counts[reference] = counts.get(reference, 0) + 1

    def updates_of(self, reference: str) -> dict[str, Any]:
        with self.lock:
            return {
                "reference": reference,
                "updates": {k: c[reference] for k, c in self.updates.items() if reference in c},
                "attempts": {k: c[reference] for k, c in self.attempts.items() if reference in c},
            }

    def take_hold(self, reference: str, phase: str) -> tuple[float, threading.Event] | None:
        """The hold fault, if it targets this reference and phase (it is used up)."""
        with self.lock:
            hold = self.faults.hold
            if hold is None or hold["reference"] != reference or hold["phase"] != phase:
                return None
            self.faults.hold = None
            self.faults.holding.append(reference)
            return float(hold["seconds"]), self.release

    def end_hold(self, reference: str) -> None:
        with self.lock:
            if reference in self.faults.holding:
                self.faults.holding.remove(reference)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "permits": [
                    {k: v for k, v in p.items() if k != "seeded"}
                    for p in self.permits.values()
                    if not p["seeded"]
                ],
                "invoices": {ref: dict(inv) for ref, inv in self.invoices.items()},
                "invoice_decisions": [dict(d) for d in self.decisions],
                "commitments": {n: c["remaining"] for n, c in self.commitments.items()},
                "reminders": [dict(r) for r in self.reminders],
                "claims": [dict(c) for c in self.claims],
                "exports": [dict(e) for e in self.exports],
                "lab": [dict(e) for e in self.lab],
                "updates": {kind: dict(counts) for kind, counts in self.updates.items()},
                "faults": asdict(self.faults),
            }


def permit_record(
    number: str, last: str, first: str, born: str, nat: str, kind: str, seeded: bool = False
) -> dict[str, Any]:
    receipt = "RCP-" + hashlib.sha256(number.encode()).hexdigest()[:10].upper()
    return {
        "file_number": number,
        "last_name": last,
        "first_name": first,
        "birth_date": born,
        "nationality": nat,
        "permit_type": kind,
        "receipt": receipt,
        "seeded": seeded,
    }


def reminder_number(reference: str, today: date | None = None) -> str:
    """The reminder of an overdue item for this week's campaign: 'REL-2024-001-2024S23'.

    One reminder per item and ISO week: the weekly process's unique reference."""
    year, week, _ = (today or date.today()).isocalendar()
    return f"{reference}-{year}S{week:02d}"


def export_key(unit: str, period: str) -> str:
    """One export: 'DIRIM-75/2024-05' (the sample's reference, one per unit and month)."""
    return f"{unit}/{period}"


def euros(amount: float) -> str:
    """French formatting: 1 234,50 €."""
    return f"{amount:,.2f}".replace(",", " ").replace(".", ",") + " €"


def parse_date(value: str) -> date | None:
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    return None


def parse_amount(value: str) -> float | None:
    cleaned = re.sub(r"[\s\u00a0\u202f€]", "", value).replace(",", ".")
    try:
        amount = float(cleaned)
    except ValueError:
        return None
    return amount if amount == amount and amount not in (float("inf"), float("-inf")) else None


def _stable_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def export_rows(seed: int, unit: str, period: str) -> list[dict[str, str]]:
    """The new files (dossiers) of a unit for a period, deterministic per seed."""
    rng = random.Random(_stable_seed(seed, unit, period))
    year, month = period.split("-")
    rows = []
    for i in range(1, rng.randint(4, 12) + 1):
        day = rng.randint(1, 28)
        last = rng.choice(["BENALI", "DIOP", "NGUYEN", "SILVA", "KOWALSKI", "OMAR", "PETROV"])
        rows.append(
            {
                "numero_dossier": f"{unit}-{year}{month}-{i:04d}",
                "date_depot": f"{year}-{month}-{day:02d}",
                "type": rng.choice(list(PERMIT_TYPES)),
                "demandeur": last,
                "nationalite": rng.choice(list(NATIONALITIES)),
                "statut": rng.choice(["déposé", "en instruction", "complet"]),
            }
        )
    return rows


# --- The Flask app ---------------------------------------------------------------


def receipt_kind(content: bytes) -> str | None:
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return None


# --- Serving -------------------------------------------------------------------
