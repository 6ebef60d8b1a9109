"""Generated settings (ROBO_* variables and robo.toml) and CLI argument lists.

Settings: any mix of good and bad values gives a working installation or one error
line naming the source to fix (ROBO_X, --x or robo.toml:line). CLI: any argument list
to the registry, replication, secret and db commands gives a success, a usage error
or one error line, and a refusal changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from robo.regions import REGIONS
from tests.hostile.strategies import EDGE_TEXT
from tests.hostile.support import (
    HOSTILE,
    SAMPLES,
    World,
    assert_clean,
    copy_home,
    dump,
    run_cli,
    scratch,
)

# --- settings -------------------------------------------------------------------------------

NUMBERS = ["0", "-1", "1", "2", "64", "65", "3600", "3601", "abc", "", " 5 ", "1e3", "inf",
           "-inf", "nan", "1e309", "0x10", "2**63", "9" * 400]  # fmt: skip
TOML_LINES = [
    'region = "guyane"', "region = guyane", 'region = "guyanne"', 'log_level = "loud"',
    "bot_slots = 0", 'bot_slots = "many"', "heartbeat_seconds = inf", "heartbeat_seconds = nan",
    'unknown_key = "x"', "[section]", "[[", 'home = "/dev/null"', "database_url = 'postgresql://'",
    'timezone = "Mars/Olympus"', 'calendar = "FR-999"', "fte_hours_per_year = 1e308",
    'executor = "threads"', "= 1", "x = [1, 2", "\x00", "region = 'occitanie'", "",
]  # fmt: skip


def region_names() -> st.SearchStrategy[str]:
    real = sorted(REGIONS)
    typo = st.tuples(st.sampled_from(real), st.integers(0, 20), st.sampled_from("aez-")).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    )
    return st.one_of(st.sampled_from(real), typo, st.sampled_from(["BAD REGION", "Guyane", ""]))


@st.composite
def environments(draw: st.DrawFn, tmp: Path) -> dict[str, str | None]:
    (tmp / "a-file").write_text("x")
    (tmp / "not-a-db.db").write_bytes(b"this is not a database, just text" * 40)
    homes = [str(tmp / "home"), str(tmp / "a-file"), "/dev/null", "/proc/robo-home",
             str(tmp / "a-file" / "below")]  # fmt: skip
    urls = ["", "postgresql://", "postgresql+psycopg://", "postgresql://u:pw@127.0.0.1:1/robo",
            "sqlite://", "sqlite:///:memory:", f"sqlite:///{tmp / 'not-a-db.db'}",
            f"sqlite:///{tmp / 'a-file' / 'x.db'}", f"sqlite:///{tmp / 'ok.db'}", "mysql://x/y",
            "nonsense", "http://example.org/x", "sqlite:////proc/robo.db"]  # fmt: skip
    env: dict[str, str | None] = {"ROBO_HOME": draw(st.sampled_from(homes))}
    choices: dict[str, st.SearchStrategy[str]] = {
        "ROBO_REGION": region_names(),
        "ROBO_LOG_LEVEL": st.sampled_from(["debug", "INFO", "warning", "loud", "", "error "]),
        "ROBO_LOG_FORMAT": st.sampled_from(["console", "json", "xml"]),
        "ROBO_BOT_SLOTS": st.sampled_from(NUMBERS),
        "ROBO_HEARTBEAT_SECONDS": st.sampled_from(NUMBERS),
        "ROBO_ABANDON_AFTER_SECONDS": st.sampled_from(NUMBERS),
        "ROBO_FTE_HOURS_PER_YEAR": st.sampled_from(NUMBERS),
        "ROBO_DATABASE_URL": st.sampled_from(urls),
        "ROBO_TIMEZONE": st.sampled_from(["", "Europe/Paris", "Mars/Olympus", "../../etc"]),
        "ROBO_CALENDAR": st.sampled_from(["", "FR", "FR-973", "FR-999", "DE"]),
        "ROBO_EXECUTOR": st.sampled_from(["local", "celery", "threads"]),
        "ROBO_CATALOGUE": st.sampled_from([str(tmp), str(tmp / "missing"), ""]),
    }
    for name in draw(st.lists(st.sampled_from(sorted(choices)), unique=True, max_size=4)):
        env[name] = draw(choices[name])
    config = draw(st.sampled_from(["none", "missing", "file", "file"]))
    if config == "missing":
        env["ROBO_CONFIG"] = str(tmp / "missing.toml")
    elif config == "file":
        lines = draw(st.lists(st.sampled_from(TOML_LINES), max_size=4))
        (tmp / "robo.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        env["ROBO_CONFIG"] = str(tmp / "robo.toml")
    return env


@given(data=st.data())
@settings(HOSTILE, max_examples=200)
def test_any_mix_of_settings_gives_an_installation_or_one_error_line(data: st.DataObject) -> None:
    with scratch() as tmp:
        env = data.draw(environments(tmp))
        result = run_cli(None, ["processes"], env=env)
    assert_clean(result)
    if result.exit_code:
        assert len(result.output.strip().splitlines()) == 1, result.output


# --- CLI arguments --------------------------------------------------------------------------

IDS = [*SAMPLES, "guyane-process", "no-such-process", "BAD ID", "-", "--", "a" * 300, "\udcff"]
VERSIONS = ["1.0.0", "1.0.1", "9.9.9", "1.0.0-" + "a" * 100, "x", ""]
NUMBERS_ARGS = ["1", "0", "-1", "99999999999999999999999999", "2147483648", "1e3", "abc", ""]
DATES = ["2026-01-01", "2026-13-01", "01/02/2026", "", "9999-12-31", "0001-01-01"]


def argument_lists(tmp: Path, world: World) -> st.SearchStrategy[list[str]]:
    (tmp / "a-file").write_text("x")
    (tmp / "garbage.zip").write_bytes(b"PK\x03\x04garbage")
    (tmp / "bundle.robo.zip").write_bytes(world.bundle)
    (tmp / "metrics.json").write_bytes(world.metrics)
    (tmp / "dir").mkdir()
    paths = [str(tmp / "missing"), str(tmp / "a-file"), str(tmp / "garbage.zip"),
             str(tmp / "bundle.robo.zip"), str(tmp / "metrics.json"), str(tmp / "dir"),
             "/dev/null", str(tmp / ("a" * 200)), "\udcff"]  # fmt: skip
    outputs = [str(tmp / "out.json"), "/proc/robo/out", str(tmp / "a-file" / "out"),
               str(tmp / "dir"), "/", str(tmp / ("o" * 300))]  # fmt: skip
    ident = st.sampled_from(IDS) | st.sampled_from(EDGE_TEXT).filter(lambda t: "\0" not in t)
    version = st.sampled_from(VERSIONS)
    number = st.sampled_from(NUMBERS_ARGS)
    path = st.sampled_from(paths)
    out = st.sampled_from(outputs)
    region = region_names()
    key = st.sampled_from([world.guyane_public, "ed25519:AAAA", "garbage", ""])
    day = st.sampled_from(DATES)
    name = st.sampled_from(["portal_password", "bad name", "x" * 100, "1abc", ""])
    commands = [
        st.tuples(st.just("validate"), path),
        st.tuples(st.just("validate"), st.just("--json"), path),
        st.tuples(st.just("schema"), st.just("-o"), out),
        st.tuples(st.just("deploy"), path),
        st.tuples(st.just("deploy"), st.just("--fork"), path, path),
        st.tuples(st.just("show"), ident, st.just("--version"), version),
        st.tuples(st.just("history"), ident),
        st.tuples(st.just("diff"), ident, version, version),
        st.tuples(st.just("rollback"), ident, version),
        st.tuples(st.sampled_from(["disable", "enable"]), ident),
        st.tuples(st.just("run-show"), number),
        st.tuples(st.just("export"), ident, st.just("-o"), out),
        st.tuples(st.just("export"), ident, st.just("--version"), version, st.just("--with-items")),
        st.tuples(st.just("import"), path),
        st.tuples(st.just("import"), path, st.just("--overlay"), path),
        st.tuples(st.just("keys"), st.just("trust"), region, key),
        st.tuples(st.just("keys"), st.just("trust"), region, key, st.just("--replace")),
        st.tuples(st.just("keys"), st.sampled_from(["list", "generate"])),
        st.tuples(st.just("overlay"), st.just("apply"), path),
        st.tuples(st.just("overlay"), st.sampled_from(["show", "remove"]), ident),
        st.tuples(st.just("replicas"), st.just("--catalogue"), path),
        st.tuples(st.just("upgrade"), ident, st.just("--catalogue"), path),
        st.tuples(st.just("metrics"), st.just("export"), st.just("-o"), out),
        st.tuples(
            st.just("metrics"), st.just("export"), st.just("--since"), day, st.just("-o"), out
        ),
        st.tuples(st.just("metrics"), st.just("import"), path),
        st.tuples(st.just("secret"), st.just("delete"), name),
        st.tuples(st.just("secret"), st.just("list")),
        st.tuples(st.just("db"), st.sampled_from(["current", "upgrade"])),
    ]
    extra = st.lists(st.sampled_from(["--json", "--bogus", "-o", "extra-arg"]), max_size=1)
    return st.tuples(st.one_of(commands), extra).map(lambda t: [*t[0], *t[1]])


@given(data=st.data())
@settings(HOSTILE, max_examples=260)
def test_any_argument_list_gives_a_result_a_usage_error_or_one_error_line(
    world: World, data: st.DataObject
) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        args = data.draw(argument_lists(tmp, world))
        before = dump(home)
        result = run_cli(home, args, input="")
        assert_clean(result, before, dump(home), as_json="--json" in args)
