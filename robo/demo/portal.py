"""A small local web portal imitating the state applications agents re-key data into.

The sample processes in ``processes/`` automate it, the browser tests drive it and
``robo portal`` serves it. Pages are server-rendered HTML forms (no JavaScript, no
CDN); all state lives in memory per app instance and is seeded deterministically.

Stable element ids, per page (labels are French; ids and classes are the contract)::

    Page                           Elements
    -----------------------------  ---------------------------------------------------
    every page                     .error (business error message), .confirmation
                                   (success message), nav a#logout
    503 page (fault injection)     h1#unavailable.unavailable "Service temporairement
                                   indisponible" -- never carries .error
    /login                         #username, #password, button[type=submit] (#login);
                                   .error "Identifiants invalides"
    /                              a#permits-link, a#permit-search-link, a#invoices-link,
                                   a#outstanding-link, a#claims-link, a#claim-search-link,
                                   a#exports-link
    /permits/new                   #file_number, #last_name, #first_name, #birth_date
                                   (text, JJ/MM/AAAA or AAAA-MM-JJ), select#nationality
                                   (ISO 3166 alpha-2), select#permit_type (salarie,
                                   etudiant, famille, visiteur), checkbox #validated,
                                   button[type=submit] (#submit)
    /permits/<file_number>         .confirmation "Dossier enregistré", #receipt
                                   ("RCP-" + 10 hex), #file_number
    /permits?number=N              form #number + #search; found: #permit-found with
                                   #found-file-number, #found-last-name,
                                   #found-first-name, #found-receipt, a#found-link;
                                   absent: p.error#not-found "Aucun dossier n° N"
    /invoices                      table#invoices (Référence, Fournisseur, Montant,
                                   N° engagement, Statut), row links a.invoice-link
    /invoices/<ref>                #reference, #supplier, #amount, #commitment, #status,
                                   button#approve, input#reason, button#reject;
                                   after a decision: .confirmation
    /commitments?number=EJ-...     form #number + #search; #commitment-number,
                                   #remaining, #initial; .error "Engagement inconnu"
    /outstanding?page=N            table#outstanding (Référence, N° de relance, Objet,
                                   Responsable, Courriel, Jours de retard), 10 rows a
                                   page, a.next (absent on the last page), a.prev,
                                   #page; N° de relance = reference + ISO week
                                   ("REL-2024-001-2024S23": one reminder a week)
    /outstanding/<ref>             #reference, #reminder-number, #manager, #email,
                                   #reminders-sent, button#remind;
                                   no e-mail: .error "Aucun responsable à relancer"
                                   and no #remind; after POST: .confirmation
    /claims/new                    #claim_ref (optional: the sender's reference),
                                   #employee_id, select#claim_type (transport, repas,
                                   hebergement, formation), #amount, #date (date),
                                   #receipt (file: PDF, PNG or JPEG), button#submit;
                                   the same claim_ref twice makes two claims (as in
                                   the real application)
    /claims/<claim_number>         .confirmation "Demande enregistrée", #claim_number,
                                   #claim_ref
    /claims?ref=R                  form #ref + #search; table#claims (N° demande,
                                   Référence, Agent, Montant), one row per claim with
                                   that claim_ref; none: p.error#not-found
    /exports?unit=U&period=P       form #unit, #period (AAAA-MM), button#search;
                                   #count and button#download (POST, CSV attachment);
                                   .error "Service inconnu" / "Période invalide"
    /lab/<ref>                     what real applications do to a bot: an iframe, a
                                   modal, confirm(), a popup, changing ids, a failing
                                   fetch; see robo.demo.portal_lab

Test endpoints (no login): ``GET /api/state`` (JSON snapshot), ``POST /api/reset``,
``GET /api/faults``, ``POST /api/faults`` with JSON ``{"failure_rate": 0.5,
"latency_ms": 100, "fail_next": 2, "hold": {...}, "release": true}``,
``GET /api/updates``, ``GET /api/updates/<reference>``, ``GET /api/health`` and
``GET /slow?seconds=N``.

Fault injection applies to form POSTs other than ``/login`` (so logging in stays
deterministic): ``fail_next`` makes the next N fail with a 503, then ``failure_rate``
applies. A failed POST changes nothing. ``latency_ms`` is added to every response
except ``/api/*``. ``hold: {"reference": R, "seconds": N, "phase": "after"}`` holds
the next update of reference R (any kind below) for N seconds, once: ``after`` the
change is applied (then answers normally), or ``before`` it (then answers 503 and
changes nothing). While it waits, R is listed in the faults' ``holding``; a reset or
``"release": true`` ends every hold at once. Tests use it to kill a bot at a known
point of an item.

Updates counted per reference (``GET /api/updates`` ->
``{"<kind>": {"<reference>": count}}``; ``GET /api/updates/<reference>`` ->
``{"reference", "updates": {kind: count}, "attempts": {kind: count}}``): each
count is one real application of the change, so exactly-once can be read from the
application's side. ``attempts`` also counts submissions the application refused
(a duplicate file, an invoice already decided, a business error)::

    permit_recorded     a file created by /permits/new          key: file number
    invoice_decided     an invoice approved or rejected          key: invoice reference
    reminder_sent       a reminder sent (each POST sends one)    key: N° de relance
    claim_recorded      a claim created (each POST creates one)  key: claim_ref, else claim number
    export_downloaded   an export CSV downloaded                 key: UNIT/PERIOD
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import threading
import time
from datetime import date
from types import TracebackType
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, session
from flask.typing import ResponseReturnValue
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from robo.demo.portal_api import PUBLIC, add_test_api
from robo.demo.portal_data import (
    CLAIM_CEILING,
    CLAIM_TYPES,
    EMPLOYEES,
    EXTENSION,
    NATIONALITIES,
    PAGE_SIZE,
    PERMIT_TYPES,
    UNITS,
    PortalConfig,
    PortalState,
    euros,
    export_key,
    export_rows,
    parse_amount,
    parse_date,
    permit_record,
    receipt_kind,
    reminder_number,
)
from robo.demo.portal_lab import add_lab

__all__ = ["PortalConfig", "PortalServer", "create_app", "serve_forever"]

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = {"login", "static", *PUBLIC}


def portal_state(app: Flask) -> PortalState:
    state: PortalState = app.extensions[EXTENSION]
    return state


def create_app(config: PortalConfig | None = None) -> Flask:
    config = config or PortalConfig()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_hex(16),
        SESSION_COOKIE_NAME="robo_portal_session",
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,
    )
    state = PortalState(config)
    app.extensions[EXTENSION] = state

    def error_page(template: str, status: int = 422, **context: Any) -> ResponseReturnValue:
        return render_template(template, **context), status

    def unavailable() -> Response:
        body = render_template("unavailable.html")
        return Response(body, status=503, headers={"Retry-After": "1"})

    def held(reference: str, phase: str) -> bool:
        """Apply the hold fault if it targets this update; True if it must now fail (503)."""
        taken = state.take_hold(reference, phase)
        if taken is None:
            return False
        seconds, release = taken
        try:
            release.wait(seconds)
        finally:
            state.end_hold(reference)
        return phase == "before"

    @app.before_request
    def _before() -> ResponseReturnValue | None:
        path = request.path
        if not path.startswith("/api/"):
            with state.lock:
                latency = state.faults.latency_ms
            if latency > 0:
                time.sleep(latency / 1000)
        if request.endpoint not in PUBLIC_ENDPOINTS and not session.get("user"):
            return redirect(f"/login?next={request.full_path.rstrip('?')}")
        if request.method == "POST" and not path.startswith("/api/") and path != "/login":
            with state.lock:
                faults = state.faults
                fail = False
                if faults.fail_next > 0:
                    faults.fail_next -= 1
                    fail = True
                elif faults.failure_rate > 0 and state.rng.random() < faults.failure_rate:
                    fail = True
                if fail:
                    faults.served += 1
            if fail:
                return unavailable()
        return None

    # --- login ---

    @app.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        target = request.values.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if request.method == "POST":
            user = request.form.get("username", "")
            password = request.form.get("password", "")
            if secrets.compare_digest(user.encode(), config.username.encode()) and (
                secrets.compare_digest(password.encode(), config.password.encode())
            ):
                session.clear()
                session["user"] = user
                return redirect(target)
            return error_page("login.html", 401, error="Identifiants invalides", next=target)
        return render_template("login.html", next=target)

    @app.route("/logout")
    def logout() -> ResponseReturnValue:
        session.clear()
        return redirect("/login")

    @app.route("/")
    def home() -> ResponseReturnValue:
        return render_template("home.html")

    # --- residence permits ---

    def permit_form(values: dict[str, str], error: str | None = None) -> ResponseReturnValue:
        return render_template(
            "permit_form.html",
            values=values,
            error=error,
            nationalities=NATIONALITIES,
            permit_types=PERMIT_TYPES,
        ), (422 if error else 200)

    @app.route("/permits/new", methods=["GET", "POST"])
    def permit_new() -> ResponseReturnValue:
        if request.method == "GET":
            return permit_form({})
        number = request.form.get("file_number", "").strip()
        if number and held(number, "before"):
            return unavailable()
        if number:
            state.attempted("permit_recorded", number)
        values = {
            k: request.form.get(k, "").strip()
            for k in (
                "file_number",
                "last_name",
                "first_name",
                "birth_date",
                "nationality",
                "permit_type",
            )
        }
        labels = {
            "file_number": "numéro de dossier",
            "last_name": "nom",
            "first_name": "prénom",
            "birth_date": "date de naissance",
        }
        for key, label in labels.items():
            if not values[key]:
                return permit_form(values, f"Champ obligatoire : {label}")
        if not re.fullmatch(r"[A-Za-z0-9-]{4,32}", values["file_number"]):
            return permit_form(values, "Numéro de dossier invalide")
        born = parse_date(values["birth_date"])
        if born is None:
            return permit_form(values, "Date de naissance invalide (format JJ/MM/AAAA)")
        if born > date.today():
            return permit_form(values, "Date de naissance dans le futur")
        if values["nationality"] not in NATIONALITIES:
            return permit_form(values, "Nationalité inconnue")
        if values["permit_type"] not in PERMIT_TYPES:
            return permit_form(values, "Type de titre inconnu")
        if request.form.get("validated") != "on":
            return permit_form(values, "Le dossier doit être validé par l'agent instructeur")
        with state.lock:
            if values["file_number"] in state.permits:
                return permit_form(values, "Dossier déjà enregistré")
            state.permits[values["file_number"]] = permit_record(
                values["file_number"],
                values["last_name"].upper(),
                values["first_name"],
                born.isoformat(),
                values["nationality"],
                values["permit_type"],
            )
            state.updated("permit_recorded", values["file_number"])
        held(values["file_number"], "after")
        return redirect(f"/permits/{values['file_number']}")

    @app.route("/permits")
    def permit_search() -> ResponseReturnValue:
        number = request.args.get("number", "").strip()
        with state.lock:
            found = state.permits.get(number) if number else None
            permit = dict(found) if found else None
        return render_template("permit_search.html", number=number, permit=permit), (
            404 if number and permit is None else 200
        )

    @app.route("/permits/<number>")
    def permit_view(number: str) -> ResponseReturnValue:
        with state.lock:
            permit = state.permits.get(number)
        if permit is None:
            abort(404)
        return render_template(
            "permit_view.html",
            permit=permit,
            nationalities=NATIONALITIES,
            permit_types=PERMIT_TYPES,
        )

    # --- invoices and commitments ---

    @app.route("/invoices")
    def invoices() -> ResponseReturnValue:
        with state.lock:
            rows = [dict(inv) for inv in state.invoices.values()]
        return render_template("invoices.html", invoices=rows, euros=euros)

    def invoice_page(
        ref: str, error: str | None = None, message: str | None = None, status: int = 200
    ) -> ResponseReturnValue:
        with state.lock:
            invoice = state.invoices.get(ref)
            invoice = dict(invoice) if invoice else None
        if invoice is None:
            abort(404)
        return render_template(
            "invoice.html", invoice=invoice, error=error, message=message, euros=euros
        ), status

    @app.route("/invoices/<ref>")
    def invoice(ref: str) -> ResponseReturnValue:
        return invoice_page(ref)

    @app.post("/invoices/<ref>/approve")
    def invoice_approve(ref: str) -> ResponseReturnValue:
        if held(ref, "before"):
            return unavailable()
        with state.lock:
            invoice = state.invoices.get(ref)
            if invoice is None:
                abort(404)
            state.attempted("invoice_decided", ref)
            if invoice["status"] != "À traiter":
                return invoice_page(ref, error="Facture déjà traitée", status=409)
            commitment = state.commitments.get(invoice["commitment"])
            if commitment is None:
                return invoice_page(ref, error="Engagement inconnu", status=422)
            if invoice["amount"] > commitment["remaining"] + 1e-9:
                return invoice_page(
                    ref, error="Montant supérieur au reste à payer de l'engagement", status=422
                )
            commitment["remaining"] = round(commitment["remaining"] - invoice["amount"], 2)
            invoice["status"] = "Validée"
            state.decisions.append({"reference": ref, "decision": "approved", "reason": ""})
            state.updated("invoice_decided", ref)
        held(ref, "after")
        return invoice_page(ref, message="Facture validée")

    @app.post("/invoices/<ref>/reject")
    def invoice_reject(ref: str) -> ResponseReturnValue:
        reason = request.form.get("reason", "").strip()
        if held(ref, "before"):
            return unavailable()
        with state.lock:
            invoice = state.invoices.get(ref)
            if invoice is None:
                abort(404)
            state.attempted("invoice_decided", ref)
            if invoice["status"] != "À traiter":
                return invoice_page(ref, error="Facture déjà traitée", status=409)
            if not reason:
                return invoice_page(ref, error="Le motif de rejet est obligatoire", status=422)
            invoice["status"] = "Rejetée"
            invoice["reason"] = reason
            state.decisions.append({"reference": ref, "decision": "rejected", "reason": reason})
            state.updated("invoice_decided", ref)
        held(ref, "after")
        return invoice_page(ref, message="Facture rejetée")

    @app.route("/commitments")
    def commitments() -> ResponseReturnValue:
        number = request.args.get("number", "").strip()
        commitment = None
        error = None
        if number:
            with state.lock:
                found = state.commitments.get(number)
                commitment = dict(found) if found else None
            if commitment is None:
                error = "Engagement inconnu"
        return render_template(
            "commitments.html", number=number, commitment=commitment, error=error, euros=euros
        ), (404 if error else 200)

    # --- outstanding items and reminders ---

    @app.route("/outstanding")
    def outstanding() -> ResponseReturnValue:
        try:
            page = max(1, int(request.args.get("page", "1")))
        except ValueError:
            page = 1
        with state.lock:
            rows = [
                dict(r, number=reminder_number(r["reference"])) for r in state.outstanding.values()
            ]
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return render_template("outstanding.html", rows=shown, page=page, pages=pages)

    def reminder_page(
        ref: str, message: str | None = None, status: int = 200, error: str | None = None
    ) -> ResponseReturnValue:
        with state.lock:
            row = state.outstanding.get(ref)
            row = dict(row) if row else None
            sent = sum(1 for r in state.reminders if r["reference"] == ref)
        if row is None:
            abort(404)
        if not row["email"] and error is None:
            error = "Aucun responsable à relancer"
        return render_template(
            "outstanding_item.html",
            row=row,
            number=reminder_number(ref),
            message=message,
            error=error,
            sent=sent,
        ), status

    @app.route("/outstanding/<ref>")
    def outstanding_item(ref: str) -> ResponseReturnValue:
        return reminder_page(ref)

    @app.post("/outstanding/<ref>/remind")
    def outstanding_remind(ref: str) -> ResponseReturnValue:
        number = reminder_number(ref)
        if held(number, "before"):
            return unavailable()
        with state.lock:
            row = state.outstanding.get(ref)
            if row is None:
                abort(404)
            state.attempted("reminder_sent", number)
            if not row["email"]:
                return reminder_page(ref, status=422)
            state.reminders.append(
                {"reference": ref, "email": row["email"], "manager": row["manager"]}
            )
            state.updated("reminder_sent", number)
        held(number, "after")
        return reminder_page(ref, message=f"Relance envoyée à {row['email']}")

    # --- HR claims with an upload ---

    def claim_form(values: dict[str, str], error: str | None = None) -> ResponseReturnValue:
        return render_template(
            "claim_form.html", values=values, error=error, claim_types=CLAIM_TYPES
        ), (422 if error else 200)

    @app.route("/claims/new", methods=["GET", "POST"])
    def claim_new() -> ResponseReturnValue:
        if request.method == "GET":
            return claim_form({})
        values = {
            k: request.form.get(k, "").strip()
            for k in ("claim_ref", "employee_id", "claim_type", "amount", "date")
        }
        claim_ref = values["claim_ref"]
        if claim_ref and held(claim_ref, "before"):
            return unavailable()
        if claim_ref:
            state.attempted("claim_recorded", claim_ref)
        if values["employee_id"] not in EMPLOYEES:
            return claim_form(values, f"Agent inconnu : {values['employee_id'] or '(vide)'}")
        if values["claim_type"] not in CLAIM_TYPES:
            return claim_form(values, "Type de frais inconnu")
        amount = parse_amount(values["amount"])
        if amount is None or amount <= 0:
            return claim_form(values, "Montant invalide")
        if amount > CLAIM_CEILING:
            return claim_form(values, f"Montant supérieur au plafond de {euros(CLAIM_CEILING)}")
        spent = parse_date(values["date"])
        if spent is None or spent > date.today():
            return claim_form(values, "Date de la dépense invalide")
        upload = request.files.get("receipt")
        content = upload.read() if upload is not None else b""
        if upload is None or not upload.filename or not content:
            return claim_form(values, "Justificatif manquant")
        kind = receipt_kind(content)
        if kind is None:
            return claim_form(values, "Le justificatif doit être un fichier PDF, PNG ou JPEG")
        with state.lock:
            number = f"DR-2024-{len(state.claims) + 1:05d}"
            state.claims.append(
                {
                    "claim_number": number,
                    "claim_ref": claim_ref,
                    "employee_id": values["employee_id"],
                    "claim_type": values["claim_type"],
                    "amount": amount,
                    "date": spent.isoformat(),
                    "receipt_name": upload.filename,
                    "receipt_type": kind,
                    "receipt_size": len(content),
                }
            )
            state.updated("claim_recorded", claim_ref or number)
        if claim_ref:
            held(claim_ref, "after")
        return redirect(f"/claims/{number}")

    @app.route("/claims")
    def claim_search() -> ResponseReturnValue:
        ref = request.args.get("ref", "").strip()
        with state.lock:
            found = [dict(c) for c in state.claims if ref and c["claim_ref"] == ref]
        return render_template(
            "claim_search.html", ref=ref, claims=found, employees=EMPLOYEES, euros=euros
        ), (404 if ref and not found else 200)

    @app.route("/claims/<number>")
    def claim_view(number: str) -> ResponseReturnValue:
        with state.lock:
            claim = next((dict(c) for c in state.claims if c["claim_number"] == number), None)
        if claim is None:
            abort(404)
        return render_template(
            "claim_view.html",
            claim=claim,
            employees=EMPLOYEES,
            claim_types=CLAIM_TYPES,
            euros=euros,
        )

    # --- exports ---

    def check_export(unit: str, period: str) -> str | None:
        if unit not in UNITS:
            return f"Service inconnu : {unit}"
        if not re.fullmatch(r"(19|20)\d\d-(0[1-9]|1[0-2])", period):
            return f"Période invalide : {period} (format AAAA-MM)"
        return None

    @app.route("/exports")
    def exports() -> ResponseReturnValue:
        unit = request.args.get("unit", "").strip()
        period = request.args.get("period", "").strip()
        error = count = None
        if unit or period:
            error = check_export(unit, period)
            if error is None:
                count = len(export_rows(config.seed, unit, period))
        return render_template(
            "exports.html", unit=unit, period=period, error=error, count=count, units=UNITS
        ), (422 if error else 200)

    @app.post("/exports/download")
    def exports_download() -> ResponseReturnValue:
        unit = request.form.get("unit", "").strip()
        period = request.form.get("period", "").strip()
        key = export_key(unit, period)
        if unit and held(key, "before"):
            return unavailable()
        if unit:
            state.attempted("export_downloaded", key)
        error = check_export(unit, period)
        if error is not None:
            return render_template(
                "exports.html", unit=unit, period=period, error=error, count=None, units=UNITS
            ), 422
        rows = export_rows(config.seed, unit, period)
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=list(rows[0]), delimiter=";", lineterminator="\r\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        with state.lock:
            state.exports.append({"unit": unit, "period": period, "rows": len(rows)})
            state.updated("export_downloaded", key)
        held(key, "after")
        filename = f"nouveaux-dossiers-{unit}-{period}.csv"
        return Response(
            buffer.getvalue().encode("utf-8"),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    add_lab(app, state)
    add_test_api(app, state)
    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (tests and embedded use)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class PortalServer:
    """The portal in a background thread: ``with PortalServer() as portal: portal.url``."""

    def __init__(
        self, config: PortalConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or PortalConfig()
        self.host = host
        self.port = port
        self.app = create_app(self.config)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the portal is not started")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> PortalServer:
        if self._server is not None:
            return self
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="robo-portal",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def state(self) -> dict[str, Any]:
        return portal_state(self.app).snapshot()

    def reset(self) -> None:
        portal_state(self.app).reset()

    def __enter__(self) -> PortalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    config: PortalConfig | None = None, host: str = "127.0.0.1", port: int = 8765
) -> None:
    """Serve the portal until interrupted (used by ``robo portal``)."""
    server = make_server(host, port, create_app(config), threaded=True)
    log.info("sample portal listening on http://%s:%s", host, server.server_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
