"""Regenerate the README's pictures of the web terminal: docs/img/web-terminal.png (a
shell session at 1280x800) and docs/img/web-terminal-narrow.png (Commands at 420x800).

Starts its own daemon on 127.0.0.1 (a throwaway state directory), opens the page in
headless Chromium, runs a short session in each, and saves the screenshots.
Usage: .venv/bin/python scripts/screenshot.py [OUTPUT_DIR]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
SESSION = [
    "python3 -c 'import platform; print(\"python\", platform.python_version())'",
    "printf '\\033[32mok\\033[0m  tests passed: \\033[1m42\\033[0m\\n'",
    "git --version && ls -la /home/sandbox",
    "echo 'héllo wörld ✓ snake_case_name'",
]
COMMANDS = [
    "python3 -c 'import json, sqlite3; print(json.dumps({\"ok\": True}))'",
    "ls --color=always /",
    "echo to stderr >&2; exit 1",
]


def main(out: Path) -> None:
    state = tempfile.mkdtemp(prefix="sandboxd-shot-")
    config = Path(state) / "shot.toml"
    config.write_text(f'[store]\ndir = "{state}"\n[docker]\ninstance = "screenshot"\n')
    daemon = subprocess.Popen([sys.executable, "-m", "sandboxd", "serve", "-c", str(config), "--port", "0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = daemon.stderr.readline()
            if m := re.search(r"listening on [^ ]+:(\d+)", line):
                port = int(m.group(1))
        if port is None:
            raise SystemExit("daemon did not start")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("document.getElementById('conn').dataset.state === 'connected'")
            page.click(".tab[data-kind=shell]")
            page.wait_for_function("/\\$ $/m.test(window.sandboxd.screen())", timeout=30_000)
            for line in SESSION:
                page.locator(".term:not(.inactive) .xterm-helper-textarea").focus()
                page.keyboard.type(line)
                page.keyboard.press("Enter")
                page.wait_for_timeout(700)
            page.screenshot(path=str(out / "web-terminal.png"))
            narrow = browser.new_page(viewport={"width": 420, "height": 800})
            narrow.goto(page.url)
            narrow.wait_for_function("document.getElementById('conn').dataset.state === 'connected'")
            narrow.click(".tab[data-kind=commands]")
            for line in COMMANDS:
                narrow.fill("#command", line)
                narrow.press("#command", "Enter")
                narrow.wait_for_timeout(900)
            narrow.screenshot(path=str(out / "web-terminal-narrow.png"))
            browser.close()
        print(f"wrote {out}/web-terminal.png and {out}/web-terminal-narrow.png")
    finally:
        daemon.terminate()
        daemon.wait(30)
        _remove_sandboxes("screenshot")


def _remove_sandboxes(instance: str) -> None:
    import docker

    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": f"org.sandboxd.instance={instance}"}):
        container.remove(force=True)
    client.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
