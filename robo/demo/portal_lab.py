"""The lab page of the sample portal: what real web applications do to a bot.

``/lab/<ref>`` is one case to record, with on the same page:

- a notice in a custom modal (``role=dialog`` "Information") that appears 0.3 s after
  the page and covers it until "J'ai compris" is clicked (``?notice=0``: none);
- ``#already-done`` "Dossier déjà traité (ENR-…)" when the case is recorded already
  (or seeded as done: ``LAB-900``), and then no form;
- a form whose field ids change at every load: "Nom de l'usager" and "Montant (€)"
  (placeholder ``0,00``) are found by their labels, the button "Enregistrer le dossier"
  (``data-testid=submit-case``) asks a native ``confirm()`` first; recorded, the page
  says "Enregistré sous le numéro ENR-12345" (``.confirmation``); a bad amount,
  ``.error`` "Montant invalide";
- a tooltip ``#amount-tip`` shown while the pointer hovers ``[data-testid=amount-help]``;
- an iframe ``#comments`` (title "Commentaires") with a form: textarea "Commentaire",
  button "Enregistrer le commentaire", then ``.confirmation`` "Commentaire enregistré";
  inside it, a nested iframe ``#history`` with ``#comment-count``;
- a button "Renommer le dossier" asking a native ``prompt()``; ``#rename-result`` shows
  "Libellé : <answer>" (or "Libellé inchangé" when dismissed);
- a link "Consulter l'aide" opening ``/lab/<ref>/help`` in a new tab: ``#help-code``
  ("AIDE-<ref>") and a button "Accuser réception" (``.confirmation`` "Lecture enregistrée");
- a button "Vérifier le statut" whose ``fetch`` (``POST /lab/<ref>/check``) fills
  ``#check-result`` "Statut : à jour"; it answers 503 when the page was opened with
  ``?check=503`` (or under the portal's POST faults), and the page then shows nothing.

Everything received is kept in the state's ``lab`` list (``GET /api/state``), one
``{"kind": "case" | "comment" | "check" | "help_read", "reference": ..., ...}`` each
(the lab is not among the update counts of ``GET /api/updates``).
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from robo.demo.portal_data import PortalState, parse_amount

#: Cases the lab knows as done before any bot comes.
DONE_CASES = {"LAB-900": "ENR-10900"}
FIRST_NUMBER = 12345


def add_lab(app: Flask, state: PortalState) -> None:
    """Register the lab pages on the portal's app."""

    def recorded(ref: str) -> str | None:
        with state.lock:
            for entry in state.lab:
                if entry["kind"] == "case" and entry["reference"] == ref:
                    return str(entry["number"])
        return DONE_CASES.get(ref)

    def lab_page(
        ref: str, *, status: int = 200, error: str | None = None, number: str | None = None
    ) -> ResponseReturnValue:
        done = None if number else recorded(ref)
        return render_template(
            "lab.html",
            ref=ref,
            done=done,
            number=number,
            error=error,
            ids={k: f"f-{secrets.token_hex(4)}" for k in ("applicant", "amount")},
            notice=request.args.get("notice") != "0",
            check_fault=request.args.get("check") == "503",
            values=request.form,
        ), status

    @app.get("/lab/<ref>")
    def lab(ref: str) -> ResponseReturnValue:
        return lab_page(ref)

    @app.post("/lab/<ref>")
    def lab_record(ref: str) -> ResponseReturnValue:
        applicant = request.form.get("applicant", "").strip()
        amount = parse_amount(request.form.get("amount", ""))
        if recorded(ref):
            return lab_page(ref, status=409)
        if not applicant:
            return lab_page(ref, status=422, error="Nom de l'usager obligatoire")
        if amount is None or amount <= 0:
            return lab_page(ref, status=422, error="Montant invalide")
        with state.lock:
            cases = sum(1 for e in state.lab if e["kind"] == "case")
            number = f"ENR-{FIRST_NUMBER + cases}"
            state.lab.append(
                {
                    "kind": "case",
                    "reference": ref,
                    "applicant": applicant,
                    "amount": amount,
                    "number": number,
                }
            )
        return lab_page(ref, number=number)

    @app.route("/lab/<ref>/comments", methods=["GET", "POST"])
    def lab_comments(ref: str) -> ResponseReturnValue:
        saved = False
        if request.method == "POST":
            text = request.form.get("comment", "").strip()
            with state.lock:
                state.lab.append({"kind": "comment", "reference": ref, "text": text})
            saved = True
        return render_template("lab_comments.html", ref=ref, saved=saved)

    @app.get("/lab/<ref>/history")
    def lab_history(ref: str) -> ResponseReturnValue:
        with state.lock:
            count = sum(1 for e in state.lab if e["kind"] == "comment" and e["reference"] == ref)
        return render_template("lab_history.html", ref=ref, count=count)

    @app.post("/lab/<ref>/check")
    def lab_check(ref: str) -> ResponseReturnValue:
        with state.lock:
            state.lab.append({"kind": "check", "reference": ref})
        if request.args.get("fail") == "503":
            return Response("Service indisponible", status=503, mimetype="text/plain")
        return jsonify(reference=ref, status="à jour")

    @app.route("/lab/<ref>/help", methods=["GET", "POST"])
    def lab_help(ref: str) -> ResponseReturnValue:
        read = request.method == "POST"
        if read:
            with state.lock:
                state.lab.append({"kind": "help_read", "reference": ref})
        return render_template("lab_help.html", ref=ref, read=read)
