"""Secrets: encrypted at rest, a private key file, names without values; and redaction."""

from __future__ import annotations

import base64
import html
import json
import multiprocessing
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import text

from robo.cli.main import cli
from robo.errors import ConfigurationError, SecretError
from robo.redaction import MASK, Redactor
from robo.secrets import SecretStore, check_name, load_or_create_key
from robo.storage.database import Database

VALUE = "Tr0ub4dor&3-horse-battery"


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    yield database
    database.close()


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return load_or_create_key(tmp_path / "keys" / "secret.key")


@pytest.fixture
def store(db: Database, key: bytes) -> SecretStore:
    return SecretStore(db, key)


# --- at rest ------------------------------------------------------------------------


def test_a_secret_value_never_appears_in_the_database(database_url: str, key: bytes) -> None:
    db = Database(database_url)
    try:
        SecretStore(db, key).set("portal_password", VALUE)
        SecretStore(db, key).set("portal_password", VALUE + "-updated")
        if database_url.startswith("sqlite:///"):
            path = Path(database_url.removeprefix("sqlite:///"))
            files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
            raw = b"".join(p.read_bytes() for p in files)
            assert b"portal_password" in raw  # we are reading where the row lives
        else:
            with db.engine.connect() as connection:
                raw = "\n".join(
                    connection.execute(text("SELECT s::text FROM secrets s")).scalars()
                ).encode()
            assert b"portal_password" in raw
        assert VALUE.encode() not in raw
        assert base64.b64encode(VALUE.encode()) not in raw
        assert SecretStore(db, key).get("portal_password") == VALUE + "-updated"
    finally:
        db.close()


def test_the_key_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    key_file = tmp_path / "home" / "secret.key"
    key = load_or_create_key(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(key)  # a usable key
    assert load_or_create_key(key_file) == key  # and the same one next time


def _read_key(key_file: str, keys: Any) -> None:
    keys.put(load_or_create_key(Path(key_file)))


def test_processes_racing_on_a_fresh_home_all_get_the_one_key_written(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        key_file = tmp_path / str(attempt) / "secret.key"
        keys = context.Queue()
        racers = [context.Process(target=_read_key, args=(str(key_file), keys)) for _ in range(6)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=30)
            assert racer.exitcode == 0
        seen = {keys.get(timeout=5) for _ in racers}
        assert seen == {key_file.read_bytes().strip()}
        assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]  # no drafts left


def test_a_key_file_readable_by_others_is_refused_with_a_chmod_hint(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    load_or_create_key(key_file)
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError) as info:
        load_or_create_key(key_file)
    assert "readable by others (mode 644)" in info.value.message
    assert f"run: chmod 600 {key_file}" in info.value.message


def test_a_key_from_the_environment_wins_over_the_key_file(tmp_path: Path) -> None:
    from_env = Fernet.generate_key()
    key_file = tmp_path / "secret.key"
    assert load_or_create_key(key_file, from_env.decode()) == from_env
    assert not key_file.exists()


def test_a_malformed_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a valid Fernet key"):
        load_or_create_key(tmp_path / "secret.key", "not-a-key")


def test_a_wrong_key_gives_a_clear_error(db: Database, store: SecretStore) -> None:
    store.set("portal_password", VALUE)
    other = SecretStore(db, Fernet.generate_key())
    with pytest.raises(SecretError) as info:
        other.get("portal_password")
    assert "secret 'portal_password' cannot be decrypted with this key" in info.value.message
    assert "robo secret set" in info.value.message
    assert VALUE not in info.value.message


# --- reading and listing ---------------------------------------------------------------


def test_a_stored_secret_is_read_back_and_registered_for_redaction(
    db: Database, key: bytes
) -> None:
    redactor = Redactor()
    store = SecretStore(db, key, redactor=redactor)
    store.set("portal_password", VALUE)
    assert store.get("portal_password") == VALUE
    assert redactor.redact(f"login with {VALUE}") == f"login with {MASK}"


def test_setting_a_secret_again_replaces_it(store: SecretStore) -> None:
    store.set("portal_password", "first-value")
    store.set("portal_password", "second-value")
    assert store.get("portal_password") == "second-value"
    assert [n["name"] for n in store.names()] == ["portal_password"]


def test_an_environment_variable_overrides_the_store(db: Database, key: bytes) -> None:
    SecretStore(db, key).set("portal_password", "stored-value")
    store = SecretStore(db, key, env={"ROBO_SECRET_PORTAL_PASSWORD": "env-value"})
    assert store.get("portal_password") == "env-value"


def test_an_environment_variable_is_enough_without_a_stored_secret(
    db: Database, key: bytes
) -> None:
    redactor = Redactor()
    store = SecretStore(db, key, env={"ROBO_SECRET_API_TOKEN": "tok-123456"}, redactor=redactor)
    assert store.get("api_token") == "tok-123456"
    assert redactor.redact("tok-123456") == MASK


def test_names_never_include_values(db: Database, key: bytes) -> None:
    SecretStore(db, key).set("portal_password", VALUE)
    store = SecretStore(db, key, env={"ROBO_SECRET_API_TOKEN": "env-token-value", "HOME": "/x"})
    names = store.names()
    assert [(n["name"], n["source"]) for n in names] == [
        ("api_token", "environment"),
        ("portal_password", "store"),
    ]
    assert names[1]["updated_at"]
    assert VALUE not in repr(names)
    assert "env-token-value" not in repr(names)


def test_an_unknown_secret_names_the_command_that_sets_it(store: SecretStore) -> None:
    with pytest.raises(SecretError) as info:
        store.get("smtp_password")
    assert info.value.message == (
        "secret 'smtp_password' is not set; run `robo secret set smtp_password` "
        "or export ROBO_SECRET_SMTP_PASSWORD"
    )


def test_deleting_a_secret_removes_it(store: SecretStore) -> None:
    store.set("portal_password", VALUE)
    assert store.delete("portal_password") is True
    assert store.delete("portal_password") is False
    assert store.names() == []
    with pytest.raises(SecretError, match="is not set"):
        store.get("portal_password")


@pytest.mark.parametrize("name", ["portal-password", "1password", "", "pass word", "pw;drop"])
def test_invalid_secret_names_are_refused(store: SecretStore, name: str) -> None:
    with pytest.raises(SecretError, match="is not a valid secret name"):
        store.set(name, VALUE)
    with pytest.raises(SecretError, match="letters, digits and '_'"):
        check_name(name)


def test_an_empty_value_is_refused(store: SecretStore) -> None:
    with pytest.raises(SecretError, match="secret 'portal_password' cannot be empty"):
        store.set("portal_password", "")


# --- CLI --------------------------------------------------------------------------------


@pytest.fixture
def robo_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, list[str], Path]:
    """A CliRunner and the global options of an isolated installation."""
    monkeypatch.chdir(tmp_path)  # no robo.toml here
    monkeypatch.delenv("ROBO_CONFIG", raising=False)
    home = tmp_path / "cli-home"
    options = ["--home", str(home), "--database-url", f"sqlite:///{tmp_path / 'cli.db'}"]
    return CliRunner(), options, home


def test_cli_secret_set_from_stdin_then_list_shows_the_name_only(
    robo_cli: tuple[CliRunner, list[str], Path],
) -> None:
    runner, options, home = robo_cli
    result = runner.invoke(
        cli, [*options, "secret", "set", "portal_password", "--stdin"], input=VALUE + "\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output == "secret portal_password stored (encrypted)\n"
    assert stat.S_IMODE((home / "secret.key").stat().st_mode) == 0o600

    listed = runner.invoke(cli, [*options, "secret", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["name"], r["source"]) for r in rows] == [("portal_password", "store")]
    assert VALUE not in listed.output

    table = runner.invoke(cli, [*options, "secret", "list"])
    assert "portal_password" in table.output
    assert VALUE not in table.output


def test_cli_secret_set_stores_the_value_without_the_trailing_newline(
    robo_cli: tuple[CliRunner, list[str], Path], tmp_path: Path
) -> None:
    runner, options, home = robo_cli
    runner.invoke(cli, [*options, "secret", "set", "portal_password", "--stdin"], input="pw-1234\n")
    db = Database(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        key = load_or_create_key(home / "secret.key")
        assert SecretStore(db, key).get("portal_password") == "pw-1234"
    finally:
        db.close()


def test_cli_secret_set_prompts_without_echoing_the_value(
    robo_cli: tuple[CliRunner, list[str], Path],
) -> None:
    runner, options, _ = robo_cli
    result = runner.invoke(
        cli, [*options, "secret", "set", "portal_password"], input=f"{VALUE}\n{VALUE}\n"
    )
    assert result.exit_code == 0, result.output
    assert "value for portal_password" in result.output
    assert VALUE not in result.output


def test_cli_secret_delete_removes_the_secret(
    robo_cli: tuple[CliRunner, list[str], Path],
) -> None:
    runner, options, _ = robo_cli
    runner.invoke(cli, [*options, "secret", "set", "portal_password", "--stdin"], input=VALUE)
    result = runner.invoke(cli, [*options, "secret", "delete", "portal_password"])
    assert result.exit_code == 0, result.output
    assert result.output == "secret portal_password deleted\n"
    assert json.loads(runner.invoke(cli, [*options, "secret", "list", "--json"]).output) == []
    again = runner.invoke(cli, [*options, "secret", "delete", "portal_password"])
    assert again.exit_code == 1
    assert "error: no stored secret 'portal_password'" in again.output


def test_cli_secret_set_refuses_an_invalid_name(
    robo_cli: tuple[CliRunner, list[str], Path],
) -> None:
    runner, options, _ = robo_cli
    result = runner.invoke(cli, [*options, "secret", "set", "bad-name", "--stdin"], input=VALUE)
    assert result.exit_code == 1
    assert "error: 'bad-name' is not a valid secret name" in result.output
    assert "Traceback" not in result.output


# --- redaction -----------------------------------------------------------------------------


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.add('p@ss w/"rd"&key')
    return r


def test_redactor_masks_the_raw_value(redactor: Redactor) -> None:
    assert redactor.redact('password is p@ss w/"rd"&key.') == f"password is {MASK}."


@pytest.mark.parametrize("encode", [quote, quote_plus], ids=["quote", "quote_plus"])
def test_redactor_masks_the_url_encoded_value(
    redactor: Redactor, encode: Callable[..., str]
) -> None:
    encoded = encode('p@ss w/"rd"&key', safe="")
    assert encoded != 'p@ss w/"rd"&key'
    assert redactor.redact(f"GET /login?pw={encoded}&x=1") == f"GET /login?pw={MASK}&x=1"


def test_redactor_masks_the_json_escaped_value(redactor: Redactor) -> None:
    document = json.dumps({"password": 'p@ss w/"rd"&key'})
    assert '\\"rd\\"' in document
    assert redactor.redact(document) == json.dumps({"password": MASK})


def test_redactor_masks_html_and_base64_forms(redactor: Redactor) -> None:
    escaped = html.escape('p@ss w/"rd"&key')
    encoded = base64.b64encode(b'p@ss w/"rd"&key').decode()
    assert redactor.redact(f"<b>{escaped}</b> {encoded}") == f"<b>{MASK}</b> {MASK}"


def test_redactor_masks_inside_nested_structures_and_bytes(redactor: Redactor) -> None:
    data = {"a": ['p@ss w/"rd"&key', ("x", 'p@ss w/"rd"&key')], "n": 3}
    assert redactor.redact(data) == {"a": [MASK, ("x", MASK)], "n": 3}
    assert redactor.redact_bytes(b'<input value=p@ss w/"rd"&key>') == b"<input value=[secret]>"


def test_redactor_does_not_mask_values_shorter_than_four_characters() -> None:
    redactor = Redactor()
    redactor.add("abc")
    assert not redactor.active
    assert redactor.redact("abc abc") == "abc abc"
    redactor.add("abcd")
    assert redactor.redact("abcd abc") == f"{MASK} abc"


def test_redactor_leaves_everything_alone_without_secrets() -> None:
    redactor = Redactor()
    assert redactor.redact("nothing secret") == "nothing secret"
    assert redactor.redact(None) is None


# --- at run time ----------------------------------------------------------------------------


def test_a_missing_secret_fails_the_run_at_once_before_a_browser_starts(
    tmp_path: Path, make_process: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from robo.app import Robo
    from robo.loader import load_process
    from robo.runner.browser import BrowserSession
    from robo.runner.run import RunRequest, run_process
    from robo.settings import Settings
    from tests.conftest import PORTAL_PASSWORD, definition

    launched: list[bool] = []
    monkeypatch.setattr(BrowserSession, "start", lambda self: launched.append(True) or self)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'r.db'}")
    robo = Robo(settings, env={"ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD})
    try:
        spec = definition(secrets=["portal_password", "smtp_password"])
        robo.registry.deploy(load_process(make_process(spec)))
        started = time.monotonic()
        result = run_process(
            robo.run_environment(),
            robo.registry.active("sample-process"),
            RunRequest("sample-process"),
        )
        elapsed = time.monotonic() - started
    finally:
        robo.close()

    assert result.status == "failed"
    assert "secret 'smtp_password' is not set" in (result.error or "")
    assert result.items_total == 0
    assert launched == []
    assert elapsed < 10


def test_output_keys_holding_a_secret_are_masked_where_items_are_stored(
    database_url: str, make_process: Callable[..., Path]
) -> None:
    import datetime as dt

    from robo.ledger import ItemOutcome, Ledger
    from robo.loader import load_process
    from robo.regional import RegionDefaults
    from robo.registry import Registry
    from tests.conftest import definition

    db = Database(database_url)
    redactor = Redactor()
    redactor.add(VALUE)
    try:
        registry = Registry(db, RegionDefaults("Europe/Paris", "FR"), actor="tester")
        registry.deploy(load_process(make_process(definition())))
        version = registry.active("sample-process")
        ledger = Ledger(db, redactor)
        d = version.definition
        run_id = ledger.start_run(
            process_id=d.id, version_id=version.version_id, version=d.version,
            baseline=d.baseline, region="occitanie", parameters={},
        )  # fmt: skip
        now = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
        output = {VALUE: "x", "nested": {f"key {VALUE}": VALUE}}
        ledger.record_item(run_id, ItemOutcome(
            position=0, reference="A1", status="success", attempts=1, started_at=now,
            finished_at=now, output=output, data={VALUE: "row"},
        ))  # fmt: skip

        item = ledger.run_detail(run_id).items[0]
        assert item.output == {MASK: "x", "nested": {f"key {MASK}": MASK}}
        with db.engine.connect() as connection:
            rows = connection.execute(text("SELECT output, data FROM items")).all()
        assert VALUE not in repr(rows)
    finally:
        db.close()
