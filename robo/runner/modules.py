"""Importing a Python bot from an unpacked version."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

from robo.errors import ConfigurationError


def load_bot_module(folder: Path, module_name: str, content_hash: str) -> types.ModuleType:
    """Import a bot module from an unpacked version, once per content hash."""
    unique = f"robo_bot_{content_hash[:12]}_{module_name.replace('.', '_')}"
    module = sys.modules.get(unique)
    if module is not None:
        return module
    path = folder / (module_name.replace(".", "/") + ".py")
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load bot module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))  # lets a bot import its sibling modules
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigurationError(f"bot module {path.name} failed to import: {exc}") from exc
    finally:
        sys.path.remove(str(folder))
    sys.modules[unique] = module
    return module
