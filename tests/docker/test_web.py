"""The web terminal in a real browser (headless Chromium through Playwright)."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, daemon):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(daemon.http + "/")
    page.wait_for_function("document.getElementById('conn').dataset.state === 'connected'")
    yield page
    context.close()
    assert errors == []


def screen(page: Page) -> str:
    return page.evaluate("window.sandboxd.screen()")


def open_shell(page: Page) -> None:
    page.click("#mode-shell")
    page.wait_for_function("/\\$ $/m.test(window.sandboxd.screen())", timeout=30_000)


def type_line(page: Page, text: str) -> None:
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def wait_screen(page: Page, pattern: str, timeout: float = 30_000) -> None:
    page.wait_for_function("(p) => new RegExp(p, 'm').test(window.sandboxd.screen())", arg=pattern, timeout=timeout)


def test_shell_runs_and_shows_the_exit_status(page):
    open_shell(page)
    type_line(page, "echo hello; exit 3")
    page.wait_for_function("document.getElementById('status-text').textContent.includes('exit 3')")
    wait_screen(page, r"^\[shell ended: failed, exit 3\]$")
    assert re.search(r"^hello$", screen(page), re.M)
    status = page.inner_text("#status-text")
    assert "failed" in status and "exec-" in status
    assert "[shell ended: failed, exit 3]" in screen(page)


def test_ansi_colour_reaches_the_terminal(page):
    open_shell(page)
    type_line(page, r"printf 'plain \033[31mREDTEXT\033[0m\n'")
    wait_screen(page, "^plain REDTEXT$")
    colour = page.evaluate("""() => {
        const buf = window.sandboxd.term.buffer.active;
        for (let y = 0; y < buf.length; y++) {
            const text = buf.getLine(y).translateToString(true);
            if (text.startsWith('plain REDTEXT')) {
                const cell = buf.getLine(y).getCell(6);
                return {palette: cell.isFgPalette(), colour: cell.getFgColor(), plain: buf.getLine(y).getCell(0).isFgDefault()};
            }
        }
        return null;
    }""")
    assert colour == {"palette": True, "colour": 1, "plain": True}


def test_resizing_the_window_resizes_the_terminal_in_the_sandbox(page):
    open_shell(page)
    type_line(page, "stty size")
    first = page.evaluate("[window.sandboxd.term.rows, window.sandboxd.term.cols]")
    wait_screen(page, f"^{first[0]} {first[1]}$")
    page.set_viewport_size({"width": 760, "height": 520})
    page.wait_for_function(f"window.sandboxd.term.cols !== {first[1]}")
    page.wait_for_timeout(300)
    second = page.evaluate("[window.sandboxd.term.rows, window.sandboxd.term.cols]")
    assert second[1] < first[1] and second[0] < first[0]
    type_line(page, "clear; stty size")
    wait_screen(page, f"^{second[0]} {second[1]}$")


def test_output_is_complete_after_a_dropped_connection(page):
    open_shell(page)
    type_line(page, "for i in $(seq 1 400); do echo line$i; sleep 0.01; done; echo DONE")
    wait_screen(page, "^line40$")
    page.evaluate("window.sandboxd.dropConnection()")
    page.wait_for_function("document.getElementById('conn').dataset.state !== 'connected'")
    page.wait_for_function("document.getElementById('conn').dataset.state === 'connected'", timeout=20_000)
    wait_screen(page, "^DONE$")
    lines = screen(page).splitlines()
    for i in range(1, 401):
        assert lines.count(f"line{i}") == 1, f"line{i} seen {lines.count(f'line{i}')} times"
    type_line(page, "echo still-typing")  # keys still reach the shell after the reconnect
    wait_screen(page, "^still-typing$")


def test_command_mode_history_stderr_colour_and_status(page):
    page.click("#mode-command")
    command = page.locator("#command")
    command.fill("echo out; echo err >&2; exit 2")
    command.press("Enter")
    page.wait_for_function("document.getElementById('status-text').textContent.includes('exit 2')")
    wait_screen(page, r"^\[failed, exit 2\]$")  # terminal writes land a frame after the status line
    text = screen(page)
    assert "$ echo out; echo err >&2; exit 2" in text and re.search(r"^out$", text, re.M)
    err_colour = page.evaluate("""() => {
        const buf = window.sandboxd.term.buffer.active;
        for (let y = 0; y < buf.length; y++)
            if (buf.getLine(y).translateToString(true) === 'err') return buf.getLine(y).getCell(0).getFgColor();
    }""")
    assert err_colour == 1  # stderr in red
    command.fill("echo second")
    command.press("Enter")
    wait_screen(page, "^second$")
    command.press("ArrowUp")
    assert command.input_value() == "echo second"
    command.press("ArrowUp")
    assert command.input_value() == "echo out; echo err >&2; exit 2"


def test_narrow_window_has_no_horizontal_scroll(page):
    page.set_viewport_size({"width": 420, "height": 700})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.is_visible("#mode-shell") and page.is_visible("#terminal")


def test_token_auth_from_the_browser(browser, make_daemon):
    token = "browser-token"
    digest = hashlib.sha256(token.encode()).hexdigest()
    daemon = make_daemon(f"""
[plugins]
enabled = ["token_auth", "origin_check"]
[plugins.token_auth]
tokens = [{{ user = "web", roles = ["user"], sha256 = "{digest}" }}]
""")
    context = browser.new_context()
    page = context.new_page()
    page.goto(daemon.http + "/")
    page.wait_for_function("document.getElementById('conn').dataset.state === 'unauthorized'", timeout=20_000)
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_function("document.getElementById('conn').dataset.state === 'connected'", timeout=20_000)
    page.goto(daemon.http + f"/?token={token}")
    page.wait_for_function("document.getElementById('conn').dataset.state === 'connected'", timeout=20_000)
    open_shell(page)
    type_line(page, "whoami")
    wait_screen(page, "^sandbox$")
    context.close()


def test_upload_button_puts_files_in_the_sandbox(page, tmp_path):
    local = tmp_path / "notes.txt"
    local.write_bytes("uploaded from the browser ✓\n".encode())
    open_shell(page)
    page.set_input_files("#upload-input", str(local))
    page.wait_for_function("document.getElementById('status-text').textContent.includes('notes.txt')",
                           timeout=15_000)
    type_line(page, "cat notes.txt")
    wait_screen(page, "^uploaded from the browser ✓$")


def test_download_button_saves_a_file_from_the_sandbox(page):
    open_shell(page)
    type_line(page, "printf 'made in the sandbox\\n' > result.txt; echo written")
    wait_screen(page, "^written$")
    page.once("dialog", lambda dialog: dialog.accept("result.txt"))
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "result.txt"
    assert open(download.path(), "rb").read() == b"made in the sandbox\n"
