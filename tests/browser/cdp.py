"""A real headless Chromium driven over the Chrome DevTools Protocol, stdlib only.

Why ``--remote-debugging-pipe`` rather than a port or ``--dump-dom``: the pipe
needs no free port (no race with other tests), no WebSocket client (messages
are JSON separated by NUL bytes on fds 3 and 4), and it ends with the process;
and unlike ``--dump-dom`` with ``--enable-logging`` it reports every network
request (``Network.requestWillBeSent``), console message and uncaught
exception as a structured event of the page's own session, not as log lines
to grep. The same session evaluates JavaScript in the page, so tests read
the text the page shows.

Used by tests/e2e/test_report_browser.py and the report benchmark.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def chromium_path() -> str | None:
    """The Chromium binary (Debian's ``chromium`` package; ``make test`` installs it)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    """Chromium answered a command with an error, or did not answer in time."""


@dataclass
class PageLoad:
    """What loading one page did."""

    url: str
    load_s: float
    """Navigate to the load event, wall clock."""
    first_contentful_paint_ms: float | None
    requests: list[str] = field(default_factory=list)
    """URLs the page requested, its own document excluded."""
    errors: list[str] = field(default_factory=list)
    """Console errors, uncaught exceptions and error log entries."""


class Chromium:
    """One headless Chromium process; a context manager."""

    def __init__(self, *, width: int = 1280, height: int = 900, timeout_s: float = 30.0) -> None:
        binary = chromium_path()
        if binary is None:
            raise FileNotFoundError("chromium not found (apt-get install chromium)")
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="kubevents-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:  # in the child, before exec: the pipe on fds 3 (in) and 4 (out)
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",  # root in CI containers; the page is our own file
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=fds,
            # Not closed by number: fds() made 3 and 4 inheritable, and every other fd
            # Python opened is close-on-exec already (PEP 446).
            close_fds=False,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._targets: dict[str, str] = {}
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()
        self.width, self.height = width, height

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(CdpError, OSError):
            self.send("Browser.close", timeout_s=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Send one command; return its result."""
        with self._cond:
            self._next_id += 1
            key = self._next_id
        message: dict[str, Any] = {"id": key, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        with self._cond:
            while key not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise CdpError(f"{method}: no answer from chromium")
                self._cond.wait(left)
            reply = self._replies.pop(key)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait_event(self, method: str, session: str, since: int) -> dict[str, Any]:
        """The first event ``method`` of ``session`` at index ``since`` or later."""
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while True:
                for event in self.events[since:]:
                    if event.get("method") == method and event.get("sessionId") == session:
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise CdpError(f"no {method} event from chromium")
                self._cond.wait(left)

    def new_page(self) -> str:
        """A new tab with the page domains on; returns its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self._targets[session] = target
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        return session

    def close_page(self, session: str) -> None:
        """Close a tab opened by :meth:`new_page`."""
        self.send("Target.closeTarget", {"targetId": self._targets.pop(session)})

    def load(self, path: Path, session: str, *, settle_s: float = 0.5) -> PageLoad:
        """Open a file in the tab, wait for its load event (and ``settle_s`` more)."""
        url = path.resolve().as_uri()
        since = len(self.events)
        started = time.perf_counter()
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired", session, since)
        load_s = time.perf_counter() - started
        time.sleep(settle_s)  # late requests and errors
        fcp = self.evaluate(
            "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null",
            session,
        )
        with self._cond:
            events = [e for e in self.events[since:] if e.get("sessionId") == session]
        result = PageLoad(url=url, load_s=load_s, first_contentful_paint_ms=fcp)
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                requested = params.get("request", {}).get("url", "")
                if requested != url:
                    result.requests.append(requested)
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                result.errors.append(f"exception: {details.get('text')} {details.get('exception')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                result.errors.append(f"console.{params.get('type')}: {params.get('args')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                result.errors.append(f"log: {params['entry'].get('text')}")
        return result

    def evaluate(self, expression: str, session: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise CdpError(f"evaluate: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def screenshot(self, session: str, *, height: int, scale: float = 1.0) -> bytes:
        """A PNG of the top ``height`` CSS pixels of the page, scaled by ``scale``."""
        import base64

        data = self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": self.width, "height": height, "scale": scale},
            },
            session=session,
        )["data"]
        return base64.b64decode(data)
