"""Load a page in a real headless Chromium over the DevTools protocol: errors, probe, screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)
TIMEOUT = 60.0


def executable() -> str | None:
    """Debian's `chromium`, when installed."""
    return shutil.which("chromium")


@dataclass
class PageLoad:
    """What happened while the page loaded, what `probe` returned and the screenshot's bytes."""

    errors: list[str] = field(default_factory=list)
    probe: Any = None
    screenshot: bytes = b""


class _DevTools:
    """One page's DevTools connection: numbered commands, events kept as they arrive."""

    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, timeout=TIMEOUT, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} from Chromium")
            self.events.append(json.loads(self.socket.recv()))

    def errors(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(str(params["exceptionDetails"].get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(
                    str(params["entry"].get("text")) + " " + params["entry"].get("url", "")
                )
        return found


def _page_socket(profile: Path, process: subprocess.Popen[bytes]) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT
    while not port_file.is_file() or not port_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("Chromium did not open its DevTools port")
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as reply:
        targets = json.load(reply)
    return str(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])


def load(page: Path, probe: str, width: int = 1200, height: int = 1600) -> PageLoad:
    """Open `page`, wait for its load event, evaluate the `probe` expression, take a screenshot."""
    chromium = executable()
    assert chromium is not None
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        args = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        process = subprocess.Popen(
            [*args, "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            tools = _DevTools(_page_socket(Path(profile), process))
            for domain in ("Page", "Runtime", "Log"):
                tools.call(f"{domain}.enable")
            tools.call("Page.navigate", url=page.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            result = tools.call("Runtime.evaluate", expression=probe, returnByValue=True)
            shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            tools.socket.close()
            return PageLoad(
                tools.errors(), result["result"].get("value"), base64.b64decode(shot["data"])
            )
        finally:
            _end_group(process)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """End Chromium and its helper processes: a renderer that outlives the browser still writes
    into the profile folder while it is being removed."""
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
