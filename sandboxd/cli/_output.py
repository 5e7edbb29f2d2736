"""The one place the CLI prints: results to stdout, errors to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer


class Output:
    json_mode = False

    def result(self, human: str, **fields: Any) -> None:
        if self.json_mode:
            typer.echo(json.dumps(fields))
        else:
            typer.echo(human)

    def table(self, rows: list[dict[str, Any]], columns: list[str]) -> None:
        if self.json_mode:
            typer.echo(json.dumps(rows))
            return
        widths = [max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns]
        typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for r in rows:
            typer.echo("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())

    def error(self, message: str) -> None:
        print(f"sandboxd: {message}", file=sys.stderr, flush=True)


out = Output()
