"""``casa i18n``: the translators' commands (web/catalogue.py, docs/translating.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from web import catalogue


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("i18n", help="the patients' translation catalogues")
    sub = p.add_subparsers(dest="i18n_command", required=True)
    c = sub.add_parser("check", help="list missing, fuzzy and machine-made translations per "
                                     "language; fail on placeholders or plural forms that "
                                     "would break")
    c.add_argument("--complete", action="store_true",
                   help="also fail when a string is missing or fuzzy")
    c.add_argument("--directory", type=Path, default=catalogue.TRANSLATIONS_DIR,
                   help=argparse.SUPPRESS)
    c.set_defaults(func=cmd_check)
    u = sub.add_parser("update", help="rebuild patient.pot from the sources and merge it into "
                                      "every patient language's patient.po")
    u.set_defaults(func=cmd_update)


def cmd_check(args: argparse.Namespace) -> int:
    failed = False
    for report in catalogue.check(args.directory):
        state = "machine-made, not reviewed" if report.machine else "reviewed"
        print(f"{report.lang}: {len(report.missing)} missing, {len(report.fuzzy)} fuzzy, "
              f"{len(report.broken)} broken ({state})")
        for kind, items in (("missing", report.missing), ("fuzzy", report.fuzzy),
                            ("broken", report.broken)):
            for item in items:
                print(f"  {kind}: {item}")
        failed |= bool(report.broken)
        failed |= args.complete and bool(report.missing or report.fuzzy)
    return 1 if failed else 0


def cmd_update(args: argparse.Namespace) -> int:
    template = catalogue.extract_patient_messages()
    catalogue.write_template(template)
    print(f"{catalogue.TEMPLATE.relative_to(catalogue.ROOT)}: {len(template)} messages")
    for path in catalogue.update(template):
        print(f"updated {path}")
    return 0
