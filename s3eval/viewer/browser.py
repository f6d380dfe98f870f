"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL bytes on file descriptors 3 and 4), with the standard library only. The viewer's tests and
``bench/viewer_screenshots.py`` use it to open a viewer from disk, run JavaScript in it and take screenshots.

Chromium comes from the system (Debian: ``apt-get install chromium``); ``S3EVAL_CHROMIUM`` names another
executable. ``find_chromium()`` is None when there is none."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")


_TRAMPOLINE = ("import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
               "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])")


class BrowserError(RuntimeError):
    pass


def find_chromium() -> Optional[str]:
    """The Chromium executable: ``$S3EVAL_CHROMIUM``, else the first of CANDIDATES on PATH; None if none."""
    named = os.environ.get("S3EVAL_CHROMIUM")
    if named:
        return named if Path(named).is_file() else shutil.which(named)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """One headless browser with one page. ``open(url)`` loads a page; ``evaluate`` runs JavaScript in it (a
    returned promise is awaited); ``screenshot`` writes a PNG. ``requests`` lists every URL the page asked for;
    ``errors`` the page's uncaught exceptions and console errors."""

    def __init__(self, executable: Optional[str] = None, width: int = 1280, height: int = 900, timeout: float = 30):
        executable = executable or find_chromium()
        if executable is None:
            raise BrowserError("no Chromium found (install it: apt-get install chromium; or set S3EVAL_CHROMIUM)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="s3eval-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        flags = ["--headless", "--disable-gpu", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", f"--window-size={width},{height}"]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self._log = open(Path(self.profile) / "stderr.log", "wb")
        # The browser reads commands on fd 3 and writes replies on fd 4: a small Python trampoline moves the pipe
        # ends there and execs it (no preexec_fn, which is unsafe with threads; a POSIX shell takes fds < 10 only).
        r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w))  # clear of 3 and 4
        self.process = subprocess.Popen([sys.executable, "-I", "-c", _TRAMPOLINE, str(r), str(w), executable, *flags,
                                         "about:blank"], pass_fds=(r, w), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self._log)  # fmt: skip
        for fd in (to_browser_r, from_browser_w, r, w):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: Optional[str] = None
        self.requests: list[str] = []
        self.errors: list[str] = []
        try:
            self.call("Browser.getVersion")
        except BaseException as exc:
            log = (Path(self.profile) / "stderr.log").read_text(errors="replace").strip().splitlines()[-3:]
            self.close()
            raise BrowserError(f"Chromium did not start: {exc} ({' / '.join(log) or 'no output'})") from exc

    # ---- protocol ----
    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium exited")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(params["entry"].get("text", ""))
        self.events.append(message)

    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None,
             timeout: Optional[float] = None) -> dict:  # fmt: skip
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._event(reply)

    def page(self, method: str, params: Optional[dict] = None, timeout: Optional[float] = None) -> dict:
        if self.session is None:
            raise BrowserError("no page open")
        return self.call(method, params, self.session, timeout)

    def _wait_event(self, method: str, timeout: Optional[float] = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self._event(self._read(deadline))

    # ---- page ----
    def open(self, url: str, width: int = 1280, height: int = 900) -> None:
        if self.session is None:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Network", "Log"):
                self.page(f"{domain}.enable")
            self.page("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip
        self.events.clear()
        if self.evaluate("location.href").split("#")[0] == url.split("#")[0]:
            self.page("Page.navigate", {"url": "about:blank"})  # a fragment change alone would not reload
            self._wait_event("Page.loadEventFired")
        self.page("Page.navigate", {"url": url})
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, timeout: Optional[float] = None) -> Any:
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout)  # fmt: skip
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for: {expression}")
            time.sleep(0.05)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.page("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
            params.update(captureBeyondViewport=True, clip=clip)
        data = self.page("Page.captureScreenshot", params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                try:
                    self.call("Browser.close", timeout=5)
                except (BrowserError, OSError):
                    pass
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
