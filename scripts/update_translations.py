"""Bring every catalogue up to date with the code, then list what needs translating.

    python scripts/update_translations.py

Edit ``robo/i18n/locale/<language>/LC_MESSAGES/robo.po`` (new texts have an
empty ``msgstr``) and run it again until it reports nothing; the test suite
checks the same (tests/unit/test_translations.py).
"""

from __future__ import annotations

import sys

from robo.i18n.catalogue import languages, problems, update


def main() -> int:
    missing = 0
    for language in languages():
        path = update(language)
        found = problems(language)
        missing += len(found)
        print(f"{path}: {len(found)} to fix")
        for problem in found:
            print(f"  {problem}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
