"""The sample portal's test endpoints (no login): state, reset, faults, update counts.

``GET /api/state`` (JSON snapshot), ``POST /api/reset``, ``GET``/``POST /api/faults``,
``GET /api/updates``, ``GET /api/updates/<reference>``, ``GET /api/health`` and
``GET /slow?seconds=N``; ``robo.demo.portal`` documents what they do.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from robo.demo.portal_data import MAX_SLOW_SECONDS, PortalState, parse_hold

#: Endpoints that need no login.
PUBLIC = {
    "slow", "api_state", "api_reset", "api_faults", "api_faults_get", "api_health",
    "api_updates", "api_updates_of",
}  # fmt: skip
FAULT_SETTINGS = {"failure_rate", "latency_ms", "fail_next", "hold", "release"}


def add_test_api(app: Flask, state: PortalState) -> None:
    """Register the test endpoints on the portal's app."""

    @app.route("/slow")
    def slow() -> ResponseReturnValue:
        try:
            seconds = float(request.args.get("seconds", "1"))
        except ValueError:
            seconds = 1.0
        seconds = min(max(seconds, 0.0), MAX_SLOW_SECONDS)
        time.sleep(seconds)
        return render_template("slow.html", seconds=seconds)

    @app.get("/api/health")
    def api_health() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/api/state")
    def api_state() -> ResponseReturnValue:
        return jsonify(state.snapshot())

    @app.post("/api/reset")
    def api_reset() -> ResponseReturnValue:
        state.reset()
        return jsonify(state.snapshot())

    @app.get("/api/updates")
    def api_updates() -> ResponseReturnValue:
        with state.lock:
            return jsonify({kind: dict(counts) for kind, counts in state.updates.items()})

    @app.get("/api/updates/<path:reference>")
    def api_updates_of(reference: str) -> ResponseReturnValue:
        return jsonify(state.updates_of(reference))

    @app.get("/api/faults")
    def api_faults_get() -> ResponseReturnValue:
        with state.lock:
            return jsonify(asdict(state.faults))

    @app.post("/api/faults")
    def api_faults() -> ResponseReturnValue:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(error="expected a JSON object"), 400
        unknown = sorted(set(data) - FAULT_SETTINGS)
        if unknown:
            return jsonify(error=f"unknown fault setting(s): {', '.join(unknown)}"), 400
        try:
            hold = parse_hold(data["hold"]) if "hold" in data else None
            if data.get("release"):
                state.release_held()
            with state.lock:
                if "hold" in data:
                    state.faults.hold = hold
                if "failure_rate" in data:
                    rate = float(data["failure_rate"])
                    if not 0.0 <= rate <= 1.0:
                        raise ValueError("failure_rate must be between 0 and 1")
                    state.faults.failure_rate = rate
                if "latency_ms" in data:
                    state.faults.latency_ms = max(0, int(data["latency_ms"]))
                if "fail_next" in data:
                    state.faults.fail_next = max(0, int(data["fail_next"]))
                faults = asdict(state.faults)
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(faults)
