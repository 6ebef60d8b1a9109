"""A tiny local form whose field ids change every round, like the RPA Challenge.

Seven labelled inputs (first name, last name, company, role, address, email,
phone) in a shuffled order, with random ids and names on every page; a bot can
only find them by their labels. ``POST /submit`` records the round and answers
with the next form, headed by ``<div class="done">`` naming the email recorded.
No page load between rounds other than the submit itself: items are short, so
what a bot adds around them shows.

    with ChallengeApp() as app: app.url, app.rounds
"""

from __future__ import annotations

import html
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

FIELDS = [
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Company Name", "company"),
    ("Role in Company", "role"),
    ("Address", "address"),
    ("Email", "email"),
    ("Phone Number", "phone"),
]


class ChallengeApp:
    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.rounds: list[dict[str, str]] = []
        self.names: dict[str, str] = {}  # field name on the current page -> key
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/":  # the browser's favicon.ico must not change the form
                    self.send_error(404)
                    return
                self._send(app.page(""))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("utf-8"))
                self._send(app.submit({k: v[0] for k, v in form.items()}))

            def _send(self, body: str) -> None:
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self, done: str) -> str:
        with self.lock:
            fields = list(FIELDS)
            self.rng.shuffle(fields)
            self.names = {}
            rows = []
            for label, key in fields:
                ident = f"f{self.rng.getrandbits(40):x}"
                self.names[ident] = key
                rows.append(
                    f'<div class="row"><label for="{ident}">{label}</label>'
                    f'<input id="{ident}" name="{ident}" type="text"></div>'
                )
        head = f'<div class="done">Round recorded: {html.escape(done)}</div>' if done else ""
        return (
            "<!doctype html><html><head><title>Challenge</title></head><body><main>"
            f'{head}<form method="post" action="/submit">{"".join(rows)}'
            '<input type="submit" value="Submit"></form></main></body></html>'
        )

    def submit(self, form: dict[str, str]) -> str:
        with self.lock:
            values = {key: form.get(name, "") for name, key in self.names.items()}
            if all(values.values()) and len(values) == len(FIELDS):
                self.rounds.append(values)
                done = values["email"]
            else:
                done = ""
        return (
            self.page(done)
            if done
            else self.page("").replace("<main>", "<main><p class=error>incomplete</p>")
        )

    def __enter__(self) -> ChallengeApp:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
