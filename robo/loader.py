"""Load a process folder: safe YAML, validation with file/line/field, content hash.

Every problem found is collected and reported together, each with where it is
and what to do, so an author fixes a file in one pass.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import SafeConstructor

from robo.canonical import definition_bytes
from robo.definition import STEP_KINDS, ProcessDefinition
from robo.errors import DefinitionError, Problem
from robo.step_models import (
    IfStep,
    step_templates,
    step_value,
    template_problems,
    walk_steps,
)

DEFINITION_FILE = "process.yaml"
MAX_DEFINITION_BYTES = 1_000_000
MAX_FILE_BYTES = 20_000_000

_HINTS = {
    "extra_forbidden": "remove it, or check its spelling against `robo schema`",
    "missing": "add this field; see docs/process-format.md",
    "string_pattern_mismatch": "see the expected format in `robo schema`",
    "greater_than": "use a positive number",
    "greater_than_equal": "use zero or a positive number",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD",
    "date_parsing": "write the date as YYYY-MM-DD",
    "finite_number": "use a finite number (not .inf or .nan)",
    "less_than_equal": "use a smaller number (bounds: docs/process-format.md)",
    "less_than": "use a smaller number (bounds: docs/process-format.md)",
    "string_too_long": "use a shorter text",
    "too_long": "use fewer entries",
}


@dataclass(frozen=True)
class LoadedProcess:
    """A validated definition with the exact files that make up its version."""

    definition: ProcessDefinition
    source_dir: Path
    definition_text: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return content_hash(self.definition, self.files)


def content_hash(definition: ProcessDefinition, files: dict[str, bytes]) -> str:
    """sha256 over the definition's meaning (not its formatting) and every file.

    Defaults are left out, so a definition that spells out a default hashes like
    one that omits it, and a field a later robo adds (with a default) does not
    change the hash of versions deployed before it.
    """
    digest = hashlib.sha256()
    digest.update(definition_bytes(definition.model_dump(mode="json", exclude_defaults=True)))
    for name in sorted(files):
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


# --- YAML with positions ------------------------------------------------------------


class _Positions:
    """Maps a path of keys/indices in the YAML document to its line number."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line_of(self, loc: Iterable[Any]) -> int | None:
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            child = self._child(node, part)
            if child is None:
                continue  # a union tag or a missing key: stay on the closest node
            key_node, node = child
            line = (key_node or node).start_mark.line + 1
        return line

    @staticmethod
    def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node | None, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    return key, value
        if (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            return None, node.value[part]
        return None


def _duplicate_keys(node: yaml.Node | None, file: str, path: str = "") -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            here = f"{path}.{name}" if path else name
            line = key.start_mark.line + 1
            if name in seen:
                problems.append(
                    Problem(
                        file,
                        line,
                        here,
                        f"duplicate key (first at line {seen[name]})",
                        "keep one of them: YAML would silently use the last",
                    )
                )
            seen[name] = line
            problems += _duplicate_keys(value, file, here)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            problems += _duplicate_keys(value, file, f"{path}[{index}]")
    return problems


MAX_YAML_DEPTH = 20  # a definition needs 6 levels; this bounds every recursive walk


def _check_events(text: str, file: str) -> None:
    """Refuse anchors, aliases and deep nesting from the event stream (no recursion).

    Anchors and aliases make "billion laughs" documents possible; deep nesting makes
    every recursive walk over the document (composer, constructor, validation) overflow
    the stack. Definitions need neither.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise DefinitionError(
                [
                    Problem(
                        file,
                        event.start_mark.line + 1 if event.start_mark else None,
                        "",
                        "YAML anchors and aliases are not allowed",
                        "write the values out in full",
                    )
                ]
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise DefinitionError(
                    [
                        Problem(
                            file,
                            event.start_mark.line + 1 if event.start_mark else None,
                            "",
                            f"values are nested more than {MAX_YAML_DEPTH} levels deep",
                            "a definition needs a few levels: flatten this value",
                        )
                    ]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _bad_text(value: str) -> str | None:
    if "\0" in value:
        return "contains a NUL character (\\0)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (an invalid \\uD800-\\uDFFF escape)"
    return None


def _scalar_problems(
    node: yaml.Node | None, file: str, constructor: SafeConstructor, path: str = ""
) -> list[Problem]:
    """Text that no database or file name can hold, and tagged values that do not convert.

    ``!!int 'zz'`` or ``!!timestamp 'x'`` make PyYAML's constructor raise plain
    ValueError/TypeError; each scalar is converted here, so the problem has its line.
    """
    problems: list[Problem] = []
    if isinstance(node, yaml.ScalarNode):
        line = node.start_mark.line + 1
        reason = _bad_text(node.value)
        if reason:
            return [Problem(file, line, path, f"the value {reason}", "remove that character")]
        try:
            constructor.construct_object(node)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # ValueError, TypeError, AttributeError, OverflowError...
            tag = node.tag.rsplit(":", 1)[-1]
            value = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            problems.append(
                Problem(
                    file,
                    line,
                    path,
                    f"{value!r} is not a valid {tag} ({type(exc).__name__})",
                    "write a valid value of that type, or quote it to keep it as text",
                )
            )
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            here = f"{path}.{name}" if path else str(name)
            if isinstance(key, yaml.ScalarNode) and _bad_text(key.value):
                problems.append(
                    Problem(
                        file,
                        key.start_mark.line + 1,
                        path,
                        f"a key {_bad_text(key.value)}",
                        "remove that character",
                    )
                )
                continue
            problems += _scalar_problems(key, file, constructor, here)
            problems += _scalar_problems(value, file, constructor, here)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            problems += _scalar_problems(value, file, constructor, f"{path}[{index}]")
    return problems


def parse_yaml(text: str, file: str) -> tuple[Any, _Positions]:
    """Safe-load YAML; raise DefinitionError with the line of any problem, never another error.

    Checked before anything is built: anchors/aliases and nesting depth (from the event
    stream), then on the node tree duplicate keys, NUL characters and lone surrogates, and
    every scalar's conversion (``!!int 'zz'``).
    """
    try:
        _check_events(text, file)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        constructor = SafeConstructor()
        problems = _duplicate_keys(root, file) + _scalar_problems(root, file, constructor)
        if problems:
            raise DefinitionError(problems)
        data = None if root is None else constructor.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        hint = "check indentation and quoting around this line"
        if "could not determine a constructor" in str(exc.problem):
            hint = "tags such as !!python/object are refused: definitions are plain data"
        raise DefinitionError(
            [Problem(file, line, "", f"invalid YAML: {exc.problem or exc}", hint)]
        ) from None
    except yaml.YAMLError as exc:
        raise DefinitionError(
            [Problem(file, None, "", f"invalid YAML: {_one_line(exc)}")]
        ) from None
    except (RecursionError, MemoryError):  # not reachable within MAX_YAML_DEPTH; never a traceback
        raise DefinitionError(
            [Problem(file, None, "", "the YAML document is too complex to read")]
        ) from None
    return data, _Positions(root)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --- Loading a folder ------------------------------------------------------------


def _field_name(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        next_part = loc[index + 1] if index + 1 < len(loc) else None
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in ("function-after", "function-before") or str(part)[:1].isupper():
            continue  # pydantic's internal union/validator tags
        elif part in STEP_KINDS and next_part == part:
            continue  # a step's union tag, followed by the step's own key
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def _validation_problems(exc: ValidationError, file: str, positions: _Positions) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(
            Problem(
                file, positions.line_of(loc), _field_name(loc), message, _HINTS.get(err["type"], "")
            )
        )
    return problems


def _read_file(
    folder: Path, name: str, file: str, line: int | None, field_name: str
) -> bytes | Problem:
    path = folder / name
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError, RuntimeError):
        return Problem(
            file,
            line,
            field_name,
            f"file '{name}' does not exist",
            f"create it in {folder} or fix the path",
        )
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL...
        return Problem(file, line, field_name, f"cannot read '{name}': {_os_reason(exc)}")
    try:
        return _read_inside(folder, name, resolved, file, line, field_name)
    except (OSError, ValueError) as exc:
        return Problem(file, line, field_name, f"cannot read '{name}': {_os_reason(exc)}")


def _os_reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else _one_line(exc)


def _read_inside(
    folder: Path, name: str, resolved: Path, file: str, line: int | None, field_name: str
) -> bytes | Problem:
    if not resolved.is_relative_to(folder.resolve()):
        return Problem(
            file,
            line,
            field_name,
            f"'{name}' escapes the process folder (symlink)",
            "keep every file of a process inside its folder",
        )
    if not resolved.is_file():
        return Problem(file, line, field_name, f"'{name}' is not a file")
    if resolved.stat().st_size > MAX_FILE_BYTES:
        return Problem(file, line, field_name, f"'{name}' is larger than {MAX_FILE_BYTES} bytes")
    return resolved.read_bytes()


def _check_python(
    definition: ProcessDefinition,
    files: dict[str, bytes],
    file: str,
    positions: _Positions,
    folder: Path,
) -> list[Problem]:
    """Syntax and entry-point checks without running the bot's code."""
    problems = []
    trees: dict[str, ast.Module | None] = {}  # each module parsed, and reported, once
    for key in ("entrypoint", "items"):
        ref = getattr(definition.bot, key)
        if not ref:
            continue
        module, function = ref.split(":")
        name = module.replace(".", "/") + ".py"
        if name not in files:
            continue  # already reported as missing
        if name not in trees:
            try:
                trees[name] = ast.parse(files[name], filename=name)
            except SyntaxError as exc:
                trees[name] = None
                problems.append(
                    Problem(
                        str(folder / name),
                        exc.lineno,
                        "",
                        f"Python syntax error: {exc.msg}",
                        f"fix the bot module named by bot.{key}",
                    )
                )
            except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, deep nesting
                trees[name] = None
                problems.append(
                    Problem(
                        str(folder / name),
                        None,
                        "",
                        f"Python module cannot be parsed: {_one_line(exc)[:200]}",
                        f"fix the bot module named by bot.{key}",
                    )
                )
        tree = trees[name]
        if tree is None:
            continue
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if function not in defined:
            problems.append(
                Problem(
                    file,
                    positions.line_of(("bot", key)),
                    f"bot.{key}",
                    f"{name} defines no top-level function '{function}'",
                    f"functions found: {', '.join(sorted(defined)) or 'none'}",
                )
            )
    return problems


def load_process(path: Path | str, *, items_optional: bool = False) -> LoadedProcess:
    """Load and validate ``path`` (a process folder or its process.yaml).

    ``items_optional``: the default input file (``items.path``) may be absent, as in a
    bundle exported without ``--with-items``; the version then has no default input.
    """
    path = Path(path)
    try:
        definition_path = path / DEFINITION_FILE if path.is_dir() else path
        file = str(definition_path)
        if not definition_path.is_file():
            raise DefinitionError(
                [
                    Problem(
                        file,
                        None,
                        "",
                        "no such file",
                        f"a process folder holds a {DEFINITION_FILE}",
                    )
                ]
            )
        if definition_path.stat().st_size > MAX_DEFINITION_BYTES:
            raise DefinitionError([Problem(file, None, "", "definition file is too large")])
        raw = definition_path.read_bytes()
    except (OSError, ValueError) as exc:
        raise DefinitionError(
            [Problem(str(path), None, "", f"cannot read: {_os_reason(exc)}")]
        ) from None
    folder = definition_path.parent
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            [Problem(file, None, "", f"not UTF-8 text ({exc.reason})", "save the file as UTF-8")]
        ) from None
    data, positions = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise DefinitionError(
            [
                Problem(
                    file,
                    1,
                    "",
                    "the definition must be a YAML mapping",
                    "start with 'id: my-process'",
                )
            ]
        )
    try:
        definition = ProcessDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_validation_problems(exc, file, positions)) from None

    files: dict[str, bytes] = {}
    problems: list[Problem] = []
    for name in definition.files:
        if name == definition.items.path:
            where: tuple[Any, ...] = ("items", "path")
        elif name in definition.include:
            where = ("include", definition.include.index(name))
        else:
            where = ("bot",)
        if items_optional and name == definition.items.path and not _exists(folder / name):
            continue
        field_name = _field_name(where)
        content = _read_file(folder, name, file, positions.line_of(where), field_name)
        if isinstance(content, Problem):
            problems.append(content)
        else:
            files[name] = content
    problems += _check_python(definition, files, file, positions, folder)
    problems += _check_templates(definition, files, file, positions)
    if problems:
        raise DefinitionError(problems)
    return LoadedProcess(definition, folder, text, files)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return True  # let _read_file say what is wrong with it


# --- templates -------------------------------------------------------------------------


def _check_templates(
    definition: ProcessDefinition, files: dict[str, bytes], file: str, positions: _Positions
) -> list[Problem]:
    """Every templated step value parses, and names only what exists (see step_models)."""
    bot = definition.bot
    params = set(definition.parameters)
    columns = input_columns(definition, files)
    outputs = None if bot.entrypoint else _outputs(definition)
    lists: list[tuple[str, list[Any], bool]] = [("setup", bot.setup, True)]
    lists += [("steps", bot.steps or [], False)]
    lists += [("verify", bot.verify if isinstance(bot.verify, list) else [], False)]
    found: list[tuple[tuple[Any, ...], str, bool, bool, str]] = []
    for name, steps, empty in lists:
        for at, step in walk_steps(steps, ("bot", name)):
            for sub, template, text in step_templates(step):
                found.append(((*at, *sub), template, text, empty, f"in bot.{name}"))
            if isinstance(step, IfStep) and step.if_.item is not None:
                # `item: status` reads the field as {{ item['status'] }} does: same checks.
                field = step.if_.item.replace("\\", "\\\\").replace("'", "\\'")
                read = "{{ item['" + field + "'] }}"
                found.append(((*at, "if", "item"), read, False, empty, f"in bot.{name}"))
    if bot.scrape is not None:
        found.append((("bot", "scrape", "url"), bot.scrape.url, False, True, "in bot.scrape"))
    problems = []
    for loc, template, text, empty, where in found:
        for message, hint in template_problems(
            template,
            params=params,
            columns=None if empty else columns,
            outputs=outputs,
            text=text,
            item_empty=empty,
            where=where,
        ):
            problems.append(Problem(file, positions.line_of(loc), _field_name(loc), message, hint))
    return problems


def _outputs(definition: ProcessDefinition) -> set[str]:
    bot = definition.bot
    steps = [*bot.setup, *(bot.steps or []), *(bot.verify if isinstance(bot.verify, list) else [])]
    names = set()
    for _, step in walk_steps(steps):
        into = getattr(step_value(step), "into", None)
        if isinstance(into, str):
            names.add(into)
    return names


def input_columns(definition: ProcessDefinition, files: dict[str, bytes]) -> set[str] | None:
    """The header of the default input file (csv/xlsx), or None when it is not known.

    Read as ``robo.runner.workitems`` reads it: CSV in UTF-8 with the most frequent of
    ``,`` ``;`` tab on the first line as delimiter; XLSX's first row of the sheet, stripped.
    """
    source = definition.items
    data = files.get(source.path or "")
    if data is None or source.source not in ("csv", "xlsx"):
        return None
    try:
        if source.source == "csv":
            header = data.decode("utf-8-sig").split("\n", 1)[0].rstrip("\r")
            delimiter = max([",", ";", "\t"], key=header.count)
            return set(next(csv.reader([header], delimiter=delimiter), []))
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book[source.sheet] if source.sheet else book.worksheets[0]
            first = next(sheet.iter_rows(values_only=True, max_row=1), ())
        finally:
            book.close()
        return {str(h).strip() for h in first if h is not None and str(h).strip()}
    except Exception:  # an unreadable input is the run's to report, with its own message
        return None


def load_many(paths: Iterable[Path | str]) -> list[LoadedProcess]:
    """Load several folders, reporting every problem of every folder and duplicate ids."""
    loaded: list[LoadedProcess] = []
    problems: list[Problem] = []
    for path in expand_paths(paths):
        try:
            loaded.append(load_process(path))
        except DefinitionError as exc:
            problems += exc.problems
    first_seen: dict[str, LoadedProcess] = {}
    for process in loaded:
        pid = process.definition.id
        if pid in first_seen:
            other = first_seen[pid].source_dir / DEFINITION_FILE
            problems.append(
                Problem(
                    str(process.source_dir / DEFINITION_FILE),
                    1,
                    "id",
                    f"duplicate id '{pid}' (also in {other})",
                    "every process needs its own id",
                )
            )
        first_seen.setdefault(pid, process)
    if problems:
        raise DefinitionError(problems)
    return loaded


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """A folder with no process.yaml of its own stands for the process folders inside it."""
    result: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not (path / DEFINITION_FILE).exists():
            children = sorted(p.parent for p in path.glob(f"*/{DEFINITION_FILE}"))
            result += children or [path]
        else:
            result.append(path)
    return result
