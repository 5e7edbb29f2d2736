"""The web terminal in a real browser (headless Chromium through Playwright)."""

from __future__ import annotations

import hashlib
import re
import struct
import time
import zlib

import pytest
import trio
from playwright.sync_api import Page, sync_playwright

from sandboxd.client import open_client

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
CONNECTED = "document.getElementById('conn').dataset.state === 'connected'"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def new_page(browser, url: str, **context_options) -> tuple[Page, list[str]]:
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context_options})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(CONNECTED, timeout=20_000)
    return page, errors


@pytest.fixture
def page(browser, daemon):
    page, errors = new_page(browser, daemon.http + "/")
    yield page
    page.context.close()
    assert errors == []


def screen(page: Page) -> str:
    return page.evaluate("window.sandboxd.screen()")


def open_shell(page: Page, tab: int = 0) -> str:
    """Click a shell tab, wait for its prompt; the shell's execution id."""
    page.locator(".tab[data-kind=shell]").nth(tab).click()
    page.wait_for_function("/\\$ $/m.test(window.sandboxd.screen())", timeout=30_000)
    return shell_id(page)


def shell_id(page: Page) -> str:
    return page.evaluate("window.sandboxd.app.active.exec.id")


def sandbox_of(page: Page) -> str:
    return page.evaluate("window.sandboxd.app.containerId")


def type_line(page: Page, text: str) -> None:
    page.locator(".term:not(.inactive) .xterm-helper-textarea").focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def wait_screen(page: Page, pattern: str, timeout: float = 30_000) -> None:
    page.wait_for_function("(p) => new RegExp(p, 'm').test(window.sandboxd.screen())", arg=pattern, timeout=timeout)


def run_command(page: Page, line: str) -> None:
    page.fill("#command", line)
    page.press("#command", "Enter")


def running(daemon, sandbox: str) -> list[str]:
    """The sandbox's running executions, as the daemon lists them to another client."""
    async def ask() -> list[str]:
        async with open_client(daemon.url) as client:
            rows = (await client.call("list-executions", {"containerId": sandbox}))["executions"]
        return [r["executionId"] for r in rows if r["status"] == "running"]
    return trio.run(ask)


def wait_running(daemon, sandbox: str, expected: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (now := sorted(running(daemon, sandbox))) != sorted(expected):
        assert time.monotonic() < deadline, f"running in {sandbox[:12]}: {now}, expected {expected}"
        time.sleep(0.2)


def test_shell_runs_and_shows_the_exit_status(page):
    open_shell(page)
    type_line(page, "echo hello; exit 3")
    page.wait_for_function("document.getElementById('status-text').textContent.includes('exit 3')")
    wait_screen(page, r"^\[shell ended: failed, exit 3\]$")
    assert re.search(r"^hello$", screen(page), re.M)
    status = page.inner_text("#status-text")
    assert "failed" in status and "exec-" in status


def test_one_shell_per_tab_reattached_after_a_reload(page, daemon):
    first = open_shell(page)
    sandbox = sandbox_of(page)
    for _ in range(4):  # clicking Shell again is the same shell, not one more bash
        page.locator(".tab[data-kind=shell]").first.click()
    type_line(page, "echo marker-$((6*7))")
    wait_screen(page, "^marker-42$")
    assert shell_id(page) == first
    wait_running(daemon, sandbox, [first])

    page.click("#new-shell")  # a second terminal tab has a shell of its own
    page.wait_for_function("window.sandboxd.app.active.key === 'sh2' && window.sandboxd.app.active.running()")
    second = shell_id(page)
    wait_running(daemon, sandbox, [first, second])
    page.locator(".tab[data-key=sh2] .close").click()  # closing the tab ends its shell
    wait_running(daemon, sandbox, [first])
    assert page.locator(".tab[data-kind=shell]").count() == 1

    page.reload()  # the sandbox is in the address bar; the tab's shell is attached again
    page.wait_for_function(CONNECTED, timeout=20_000)
    assert f"sandbox={sandbox}" in page.url
    wait_screen(page, "^marker-42$")
    assert shell_id(page) == first
    assert page.evaluate("document.activeElement.closest('.term') === window.sandboxd.app.active.el")  # focused
    type_line(page, "echo after-$((1+1))")
    wait_screen(page, "^after-2$")
    wait_running(daemon, sandbox, [first])


def test_closing_the_browser_tab_ends_its_shell_after_the_grace(browser, make_daemon):
    daemon = make_daemon("[limits]\ndetached_tty_grace_seconds = 1.0")
    page, errors = new_page(browser, daemon.http + "/")
    shell = open_shell(page)
    sandbox = sandbox_of(page)
    wait_running(daemon, sandbox, [shell])
    page.context.close()
    wait_running(daemon, sandbox, [])
    assert errors == []


def test_switching_sandbox_moves_the_shell_and_survives_a_reconnect(page, daemon):
    open_shell(page)
    first_sandbox = sandbox_of(page)
    page.click("#new-sandbox")  # a new sandbox: the shell moves there
    page.wait_for_function("(old) => window.sandboxd.app.containerId && window.sandboxd.app.containerId !== old",
                           arg=first_sandbox)
    page.wait_for_function("window.sandboxd.app.active.running()", timeout=30_000)
    second_sandbox, second_shell = sandbox_of(page), shell_id(page)
    type_line(page, "hostname")
    wait_screen(page, f"^{second_sandbox[:12]}$")
    wait_running(daemon, first_sandbox, [])
    wait_running(daemon, second_sandbox, [second_shell])

    page.select_option("#sandbox", first_sandbox)  # and back with the dropdown
    page.wait_for_function("(old) => window.sandboxd.app.active.running() && window.sandboxd.app.active.exec.id !== old",
                           arg=second_shell, timeout=30_000)
    assert f"sandbox={first_sandbox}" in page.url
    wait_running(daemon, second_sandbox, [])
    wait_running(daemon, first_sandbox, [shell_id(page)])

    page.evaluate("window.sandboxd.dropConnection()")
    page.wait_for_function(f"!({CONNECTED})")
    page.wait_for_function(CONNECTED, timeout=20_000)
    type_line(page, "hostname")
    wait_screen(page, f"^{first_sandbox[:12]}$")
    assert page.is_hidden("#banner")  # no NOT_FOUND: the shell is where the page is


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
    page.wait_for_function(f"!({CONNECTED})")
    page.wait_for_function(CONNECTED, timeout=20_000)
    wait_screen(page, "^DONE$")
    lines = screen(page).splitlines()
    for i in range(1, 401):
        assert lines.count(f"line{i}") == 1, f"line{i} seen {lines.count(f'line{i}')} times"
    type_line(page, "echo still-typing")  # keys still reach the shell after the reconnect
    wait_screen(page, "^still-typing$")


def test_underscores_are_visible_at_device_scale_1(browser, daemon):
    page, errors = new_page(browser, daemon.http + "/", device_scale_factor=1)
    page.click(".tab[data-kind=commands]")
    run_command(page, "echo snake_case_name")
    wait_screen(page, "^snake_case_name$")
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    cell = page.evaluate("""() => {
        const term = window.sandboxd.term, buf = term.buffer.active;
        const box = document.querySelector('.term:not(.inactive) .xterm-screen').getBoundingClientRect();
        for (let y = 0; y < buf.length; y++)
            if (buf.getLine(y).translateToString(true) === 'snake_case_name') {
                const w = box.width / term.cols, h = box.height / term.rows;
                return {x: box.x + 5 * w, y: box.y + (y - buf.viewportY) * h, width: w, height: h};
            }
    }""")
    pixels = decode_png(page.screenshot(clip=cell))  # the cell of the first "_"
    lit = [sum(1 for px in row if sum(px) > 300) for row in pixels]
    assert max(lit) >= len(pixels[0]) // 2, f"no underscore drawn in its cell: lit pixels per row {lit}"
    page.context.close()
    assert errors == []


def test_commands_stop_ctrl_c_stdin_term_and_each_output_kept(page):
    page.click(".tab[data-kind=commands]")
    command = page.locator("#command")
    run_command(page, "echo out; echo err >&2; exit 2")
    wait_screen(page, r"^\[#1 failed, exit 2, \d+ ms\]$")
    text = screen(page)
    assert "$ echo out; echo err >&2; exit 2  #1" in text and re.search(r"^out$", text, re.M)
    err_colour = page.evaluate("""() => {
        const buf = window.sandboxd.term.buffer.active;
        for (let y = 0; y < buf.length; y++)
            if (buf.getLine(y).translateToString(true) === 'err') return buf.getLine(y).getCell(0).getFgColor();
    }""")
    assert err_colour == 1  # stderr in red
    command.press("ArrowUp")
    assert command.input_value() == "echo out; echo err >&2; exit 2"
    command.fill("")

    run_command(page, "echo ready-2; sleep 60")  # Stop
    wait_screen(page, "^ready-2$")
    page.click("#stop")
    wait_screen(page, r"^\[#2 killed, exit \d+, \d+ ms · killed\]$")

    run_command(page, "echo ready-3; sleep 60")  # Ctrl-C in the terminal area interrupts
    wait_screen(page, "^ready-3$")
    page.locator(".term:not(.inactive) .xterm-helper-textarea").focus()
    page.keyboard.press("Control+C")
    wait_screen(page, r"^\[#3 failed, exit 130, \d+ ms\]$")

    run_command(page, "read a; read b; echo \"got $a+$b\"; echo TERM=$TERM")  # stdin typed in the terminal
    page.wait_for_function("!document.getElementById('stop').disabled")
    type_line(page, "one")
    type_line(page, "two")
    wait_screen(page, r"^got one\+two$")
    wait_screen(page, r"^TERM=xterm-256color$")
    wait_screen(page, r"^\[#4 success, exit 0, \d+ ms\]$")

    # A second command hides nothing: the first waits for the second's flag, so its
    # output comes both before and after the second's, each part under its own label.
    run_command(page, "echo first-1; while [ ! -e go-flag ]; do sleep 0.1; done; echo first-2")
    wait_screen(page, "^first-1$")
    run_command(page, "echo second; touch go-flag")
    wait_screen(page, r"^\[#6 success, exit 0, \d+ ms\]$")
    wait_screen(page, r"^\[#5 success, exit 0, \d+ ms\]$")
    lines = screen(page).splitlines()
    assert lines.index("first-1") < lines.index("$ echo second; touch go-flag  #6") < lines.index("first-2")
    assert "second" in lines
    assert "── #5 echo first-1; while [ ! -e go-flag ]; do sleep 0.1; done; echo first-2 ──" in lines


def test_font_size_control_and_copy_on_select(browser, daemon):
    page, errors = new_page(browser, daemon.http + "/")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    cols = page.evaluate("window.sandboxd.term.cols")
    page.click("#font-larger")
    page.click("#font-larger")
    assert page.evaluate("window.sandboxd.term.options.fontSize") == 16
    page.wait_for_function(f"window.sandboxd.term.cols < {cols}")  # refitted to the larger font
    page.evaluate("window.sandboxd.term.select(0, 0, 7)")  # the welcome line starts "Welcome"
    page.wait_for_function("document.getElementById('status-text').textContent === 'copied 7 characters'")
    assert page.evaluate("navigator.clipboard.readText()") == "Welcome"
    page.reload()
    page.wait_for_function(CONNECTED)
    assert page.evaluate("window.sandboxd.term.options.fontSize") == 16  # kept for next time
    page.context.close()
    assert errors == []


def test_narrow_window_has_a_compact_header_and_no_horizontal_scroll(page):
    page.set_viewport_size({"width": 420, "height": 800})
    page.wait_for_function("document.documentElement.scrollWidth <= window.innerWidth")  # after the refit
    assert page.evaluate("document.querySelector('header').getBoundingClientRect().height") <= 72
    for control in ("#sandbox", "#new-sandbox", "#upload", "#download", "#new-shell", "#terminals"):
        assert page.is_visible(control), control


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
    page.wait_for_function("document.getElementById('user').textContent === 'web'", timeout=20_000)
    context.close()
    context = browser.new_context()
    page = context.new_page()
    page.goto(daemon.http + f"/?token={token}")
    page.wait_for_function("document.getElementById('user').textContent === 'web'", timeout=20_000)
    assert "token" not in page.url  # read, then dropped from the address bar
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


def test_download_picks_a_file_from_a_listing_and_errors_can_be_dismissed(page):
    open_shell(page)
    type_line(page, "mkdir -p out && printf 'made in the sandbox\\n' > out/result.txt; echo written")
    wait_screen(page, "^written$")
    page.click("#download")
    page.fill("#download-path", "no-such-file")
    page.click("#download-go")
    page.wait_for_selector("#banner", state="visible")
    assert page.inner_text("#banner-text").startswith("NOT_FOUND")
    page.click("#banner-close")
    assert page.is_hidden("#banner")
    page.evaluate("window.sandboxd.app.bannerMs = 2000")  # and it goes by itself (after 8 s in use)
    page.click("#download")
    page.fill("#download-path", "no-such-file")
    page.click("#download-go")
    page.wait_for_selector("#banner", state="visible")
    page.wait_for_selector("#banner", state="hidden", timeout=10_000)

    page.click("#download")
    page.click("#download-list button.dir:text-is('out/')")
    page.click("#download-list button.file:text-is('result.txt')")
    assert page.input_value("#download-path").endswith("/out/result.txt")
    with page.expect_download() as info:
        page.click("#download-go")
    download = info.value
    assert download.suggested_filename == "result.txt"
    assert open(download.path(), "rb").read() == b"made in the sandbox\n"


def decode_png(data: bytes) -> list[list[tuple[int, int, int]]]:
    """The RGB rows of an 8-bit RGB or RGBA PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + size]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + size
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return rows
