"""The web consoles in a real browser, for test_consoles.py: Playwright (PyPI) driving
Debian's /usr/bin/chromium (scripts/host-tools --browser). Playwright's own browser
download is never used: every launch names the executable, and PLAYWRIGHT_BROWSERS_PATH
points at a directory that does not exist.

- `browser()`: a headless Chromium, closed on exit.
- `novnc(browser, url, password=None)`: opens a noVNC URL (Nova's
  `vnc_auto.html?path=%3Ftoken%3D...`), clicks Connect when noVNC waits for it, answers
  the credentials dialog with PASSWORD, and waits for "Connected" (or a failure).
- `spice_html5(browser, url, password=None)`: opens spice_auto.html, answers its
  `prompt("Password")`, and waits for "Connected" in #message-div and a drawn canvas.
Both return a Console (page, status, timings) whose `.shot(path)` takes a screenshot and
`.colours()` counts the distinct colours of the console's canvas.
"""

import contextlib
import os
import pathlib
import time

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]

# distinct colours among (a sample of) a canvas's pixels
CANVAS_COLOURS_JS = """(sel) => {
  const c = document.querySelector(sel);
  if (!c || !c.width || !c.height) return {w: 0, h: 0, colours: 0};
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  const step = Math.max(1, Math.floor(d.length / 4 / 200000)) * 4;
  for (let i = 0; i < d.length; i += step) {
    seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    if (seen.size > 64) break;
  }
  return {w: c.width, h: c.height, colours: seen.size};
}"""


@contextlib.contextmanager
def browser(timeout=60):
    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = "/nonexistent-no-browser-download"
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing (scripts/host-tools --browser)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                              headless=True, timeout=timeout * 1000)
        try:
            yield b
        finally:
            b.close()


class Console:
    def __init__(self, page, canvas):
        self.page = page
        self.canvas = canvas
        self.status = ""
        self.connected_after = None   # seconds from page.goto to "Connected"
        self.asked_password = 0       # credentials dialogs / prompts seen
        self.credentials_sent_at = None  # seconds from page.goto to the password's submission
        self.failed = None            # the failure text, if any
        self.console_log = []
        self.websockets = []          # URLs of the websockets the page opened
        self.ws_objects = []          # and Playwright's WebSocket objects (is_closed())
        page.on("console", lambda m: self.console_log.append(f"{m.type}: {m.text}"))
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws):
        self.websockets.append(ws.url)
        self.ws_objects.append(ws)

    def colours(self):
        return self.page.evaluate(CANVAS_COLOURS_JS, self.canvas)

    def wait_drawn(self, timeout=20):
        """Waits until the canvas shows more than one colour; returns colours()."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.colours()
            if c["colours"] > 1 or time.monotonic() > deadline:
                return c
            time.sleep(0.2)

    def shot(self, path):
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), timeout=30000)
        return path

    def text(self, selector):
        try:
            return self.page.inner_text(selector, timeout=2000)
        except Exception:  # noqa: BLE001 - a missing element reads as ""
            return ""

    def close(self):
        self.page.close()

    def describe(self):
        return (f"status={self.status!r} failed={self.failed!r} asked_password="
                f"{self.asked_password} websockets={self.websockets}\nbrowser console:\n"
                + "\n".join(self.console_log[-30:]))


def novnc(b, url, password=None, timeout=30, ask_limit=1):
    """noVNC (vnc.html / vnc_auto.html). Returns a Console whose .status is the text of
    #noVNC_status when it said "Connected", or .failed when noVNC reported an error, the
    credentials dialog appeared more than `ask_limit` times or with no password to give,
    or `timeout` passed."""
    page = b.new_page(viewport={"width": 1024, "height": 768})
    con = Console(page, "#noVNC_container canvas")
    t0 = time.monotonic()
    page.goto(url, timeout=timeout * 1000)
    deadline = t0 + timeout
    clicked = False
    while True:
        if time.monotonic() > deadline:
            con.failed = con.failed or f"timeout after {timeout}s"
            break
        state = page.evaluate("""() => {
          const st = document.getElementById('noVNC_status');
          const btn = document.getElementById('noVNC_connect_button');
          const dlg = document.getElementById('noVNC_credentials_dlg');
          const panel = document.getElementById('noVNC_connect_dlg');
          return {status: st ? st.textContent : '', error: st ? st.classList.contains('noVNC_status_error') : false,
                  shown: st ? st.classList.contains('noVNC_open') : false,
                  connected: document.documentElement.classList.contains('noVNC_connected'),
                  creds: dlg ? dlg.classList.contains('noVNC_open') : false,
                  connect: !!(btn && panel && panel.classList.contains('noVNC_open')),
                  loading: document.documentElement.classList.contains('noVNC_loading')};
        }""")
        con.status = state["status"]
        if state["status"].startswith("Connected") and state["connected"]:
            con.connected_after = time.monotonic() - t0
            break
        if state["error"]:
            con.failed = state["status"]
            break
        if state["creds"]:
            con.asked_password += 1
            if password is None or con.asked_password > ask_limit:
                con.failed = "credentials asked" + ("" if password is None else " again")
                break
            # noVNC 1.3 does not let a "normal" status replace a visible warning ("Credentials
            # are required", shown for 1.5 s): type once it is gone, as a person would, so
            # that "Connected" shows in #noVNC_status.
            page.wait_for_function(
                "() => !document.getElementById('noVNC_status').classList.contains('noVNC_open')",
                timeout=5000)
            page.fill("#noVNC_password_input", password, timeout=5000)
            con.credentials_sent_at = time.monotonic() - t0
            page.click("#noVNC_credentials_button", timeout=5000)
            page.wait_for_function(
                "() => !document.getElementById('noVNC_credentials_dlg').classList.contains('noVNC_open')",
                timeout=5000)
            continue
        if state["connect"] and not clicked and not state["loading"]:
            page.click("#noVNC_connect_button", timeout=5000)
            clicked = True
        time.sleep(0.05)
    return con


def spice_html5(b, url, password=None, timeout=30, ask_limit=1):
    """spice-html5 (spice_auto.html). Answers `prompt("Password")` with PASSWORD (at most
    `ask_limit` times; then dismissed). Returns a Console with .status = the messages of
    #message-div once one says "Connected to", or .failed."""
    page = b.new_page(viewport={"width": 1024, "height": 768})
    con = Console(page, "#spice_surface_0")

    def on_dialog(d):
        if d.type == "prompt":
            con.asked_password += 1
            if password is not None and con.asked_password <= ask_limit:
                d.accept(password)
                return
        d.dismiss()

    page.on("dialog", on_dialog)
    t0 = time.monotonic()
    page.goto(url, timeout=timeout * 1000)
    deadline = t0 + timeout
    while True:
        msgs = page.evaluate(
            "() => { const m = document.getElementById('message-div'); return m ? m.textContent : ''; }")
        con.status = msgs
        if "Connected to" in msgs:
            con.connected_after = time.monotonic() - t0
            break
        if con.asked_password > ask_limit or (password is None and con.asked_password):
            con.failed = f"password asked {con.asked_password} time(s)"
            break
        if "WebSocket error" in msgs or "Unexpected link error" in msgs:
            con.failed = msgs
            break
        if time.monotonic() > deadline:
            con.failed = f"timeout after {timeout}s"
            break
        time.sleep(0.05)
    return con
