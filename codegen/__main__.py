"""``python -m codegen --spec PATH [--out DIR]``: regenerate ``sentry_async/api/``.

The spec comes from ``--spec`` or ``$SENTRY_OPENAPI_SPEC``. ``--out`` writes into another
directory (a copy of the tree's layout) so CI can compare with the committed output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .generate import generate, iter_stale

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument("--spec", default=os.environ.get("SENTRY_OPENAPI_SPEC"),
                        help="the dereferenced OpenAPI JSON (default: $SENTRY_OPENAPI_SPEC)")
    parser.add_argument("--out", type=Path, default=ROOT,
                        help="root to write into (default: this repository)")
    args = parser.parse_args(argv)
    if not args.spec:
        parser.error("give --spec PATH or set SENTRY_OPENAPI_SPEC")
    try:
        spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read the spec {args.spec}: {exc}")
    files = generate(spec, ROOT)
    out: Path = args.out
    for relative, text in files.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if out.resolve() == ROOT:
        for stale in iter_stale(files, ROOT):
            stale.unlink()
    print(f"wrote {len(files)} files under {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
