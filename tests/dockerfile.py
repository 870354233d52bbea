"""Reading the Dockerfile: its instructions, the runtime stage's environment, and the
exec-form commands (CMD, HEALTHCHECK), for the lint tests and for running the image's
commands against a real gateway process."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def runtime_stage() -> list[tuple[str, str]]:
    """Return the instructions of the last stage (the image that runs)."""
    pairs = instructions()
    last_from = max(n for n, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    return pairs[last_from:]


def environment() -> dict[str, str]:
    """Return the variables the runtime stage's ENV instructions set (`KEY=value` form)."""
    env: dict[str, str] = {}
    for keyword, args in runtime_stage():
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def exec_form(keyword: str) -> list[str]:
    """Return the JSON-array command of the runtime stage's CMD or HEALTHCHECK."""
    args = next(a for k, a in reversed(runtime_stage()) if k == keyword)
    command = args[args.index("CMD ") + 4 :] if keyword == "HEALTHCHECK" else args
    return list(json.loads(command))
