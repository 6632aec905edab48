"""The report in a real browser: headless Chromium (Debian's ``chromium``) renders it without errors,
fetches nothing, decodes every figure, and shows the findings on its first 1280×800 screen.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: it reads
commands from its fd 3 and writes replies and events to its fd 4, each a JSON message ended by a
NUL byte), so the test needs no Python package beyond the project's own.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from globalrep.atomic import write_csv_atomic
from globalrep.figures.bars import plot_chain_bars
from globalrep.figures.chains import plot_chain_groups
from globalrep.figures.findings import plot_findings_overview
from globalrep.figures.notice import plot_notice
from globalrep.findings import Inputs, findings_table
from globalrep.report import FindingsOutputs, TaskOutputs, build_report
from globalrep.tables import deltas_table, gap_changes_table, group_table

EVIL = "<b>evil</b> & co"
CHAINS = {"demo": ["demo-base", "demo-sft", EVIL]}
STAGES = {"demo-base": "base", "demo-sft": "sft", EVIL: "pt"}
CONFIG = {
    "models": {model: {"path": f"models/{model}", "stage": stage, "kind": "lm"} for model, stage in STAGES.items()},
    "chains": CHAINS,
}
VERSIONS = {"globalrep": "0.1.0", "torch": "2.13.0", "transformers": "5.24.0"}
SESSION_TIMEOUT = 60  # seconds for the whole browser session, start to screenshot
SCREEN = (1280, 800)  # the first screen a reader sees (CSS pixels)
FLAGS = [
    "--headless",
    "--no-sandbox",  # the test may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1024",
    "--remote-debugging-pipe",
]
# Waits for every image to decode, then reports what the page shows.
PAGE_STATE = """
Promise.all(Array.from(document.images, img => img.decode().then(() => true, () => false)))
  .then(decoded => ({
    href: location.href,
    readyState: document.readyState,
    title: document.title,
    figures: document.querySelectorAll("figure").length,
    images: Array.from(document.images, (img, i) =>
      ({alt: img.alt, decoded: decoded[i], width: img.naturalWidth, height: img.naturalHeight})),
    axes: Array.from(document.querySelectorAll("section.axis"), section => section.id),
    boldElements: document.querySelectorAll("b").length,
    text: document.body.innerText,
    viewport: [window.innerWidth, window.innerHeight],
    firstSection: document.querySelector("body > h1 + section")?.id,
    // what of the findings the first screen shows: their top and bottom edges, in CSS pixels
    findings: Array.from(document.querySelectorAll("#findings li, #findings img"),
      el => ({tag: el.tagName, text: el.innerText, step: el.closest("ul")?.previousElementSibling?.innerText,
              top: el.getBoundingClientRect().top,
              bottom: el.getBoundingClientRect().bottom, links: Array.from(el.querySelectorAll("a"), a => a.hash)})),
    metadataTop: Array.from(document.querySelectorAll("p")).find(p => p.innerText.startsWith("Config hash"))
      .getBoundingClientRect().top,
  }))
"""


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not on PATH; CI must install it (see .ci/run)")
        pytest.skip("chromium (Debian package `chromium`) is not on PATH; the report's browser check needs it")
    return path


@pytest.fixture
def report(tmp_path) -> tuple[Path, int]:
    """A report with one task per axis and real figures; returns its path and figure count."""
    rng = np.random.default_rng(0)
    step = {"demo-base": 0.0, "demo-sft": 0.15, EVIL: 0.05}  # clear changes, so the summary lists some
    tasks, n_figures, item_scores = {}, 0, {}
    for task, groups, metric in (
        ("md3_taboo", ("en_us", "en_in", "en_ng"), "generated_correct"),
        ("global_opinions", ("United States", "China", "Jordan"), "similarity"),
        ("sft_langid", (), "share"),
    ):
        rows = [
            (model, f"q{i}", group, metric, rng.uniform(0.4, 0.7) + shift)
            for model, shift in step.items()
            for group in groups
            for i in range(20)
        ]
        scores = pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])
        item_scores[task] = scores
        table, deltas = group_table(scores), deltas_table(scores, CHAINS)
        table_csv, deltas_csv = tmp_path / f"{task}.csv", tmp_path / f"{task}_deltas.csv"
        write_csv_atomic(table, table_csv)
        write_csv_atomic(deltas, deltas_csv)
        out_prefix = tmp_path / "figures" / task / metric
        if task == "md3_taboo":
            figures = plot_chain_bars(table, CHAINS, metric, out_prefix, "MD3 Taboo", STAGES)
        elif task == "global_opinions":
            figures = plot_chain_groups(table, CHAINS, metric, out_prefix, "GlobalOpinionQA", STAGES)
        else:
            figures = plot_notice("SFT data", "No datasets in this run.", out_prefix)
        pngs = [path for path in figures if path.suffix == ".png"]
        n_figures += len(pngs)
        models = list(STAGES) if groups else []
        tasks[task] = TaskOutputs(table_csv, deltas_csv, figures=pngs, models=models, note=f"note on {EVIL}")
    # The findings it opens with: MD3's gap changes and GlobalOpinionQA's US-minus-rest change.
    gap_changes = gap_changes_table(item_scores["md3_taboo"], "en_us", CHAINS)
    goqa_deltas = deltas_table(item_scores["global_opinions"], CHAINS)
    inputs = Inputs({"md3_taboo_gap_changes": gap_changes, "global_opinions_deltas": goqa_deltas},
                    {"global_opinions": item_scores["global_opinions"]}, CHAINS)  # fmt: skip
    findings_csv = tmp_path / "findings.csv"
    write_csv_atomic(findings_table(inputs), findings_csv)
    overview = [p for p in plot_findings_overview(findings_table(inputs), tmp_path / "overview") if p.suffix == ".png"]
    missing = {"md3_taboo": {"demo-sft": (3, 60), "demo-base": (0, 60)}}
    out = tmp_path / "site" / "report.html"
    build_report(out, tasks, CONFIG, VERSIONS, FindingsOutputs(findings_csv, overview[0], missing))
    return out, n_figures + 1


def test_report_renders_in_chromium_with_every_figure(chromium, report, tmp_path):
    page, n_figures = report
    log = tmp_path / "chromium.log"
    with open_browser(chromium, tmp_path / "profile", log) as devtools:
        target = devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = devtools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            devtools.send(f"{domain}.enable", session=session)
        # The viewport itself is the screen (the window's size would include the browser's frame).
        screen = {"width": SCREEN[0], "height": SCREEN[1], "deviceScaleFactor": 1, "mobile": False}
        devtools.send("Emulation.setDeviceMetricsOverride", screen, session)
        seen_before = len(devtools.events)
        navigation = devtools.send("Page.navigate", {"url": page.as_uri()}, session)
        assert "errorText" not in navigation, navigation
        devtools.wait_for("Page.loadEventFired", session, after=seen_before)
        state = devtools.send(
            "Runtime.evaluate", {"expression": PAGE_STATE, "awaitPromise": True, "returnByValue": True}, session
        )
        assert "exceptionDetails" not in state, state
        state = state["result"]["value"]
        first_screen = devtools.send("Page.captureScreenshot", {"format": "png"}, session)
        size = devtools.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        screenshot = devtools.send(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session
        )
        events = [event for event in devtools.events if event.get("sessionId") == session]

    diagnostics = f"chromium log:\n{log.read_text(errors='replace')[-3000:]}"
    assert state["href"] == page.as_uri() and state["readyState"] == "complete", state
    assert page_errors(events) == [], diagnostics
    assert outside_requests(events) == [], "the report must fetch nothing from elsewhere"
    # Every figure is an <img> the browser decoded: the overview and the tasks'.
    assert state["figures"] == len(state["images"]) == n_figures == 4
    assert all(img["decoded"] and img["width"] > 0 and img["height"] > 0 for img in state["images"]), state["images"]
    assert state["axes"] == ["axis-dialects", "axis-languages", "axis-opinions"]
    # The model name shows as text, its markup never becomes elements.
    assert state["boldElements"] == 0 and EVIL in state["text"]
    assert "What alignment changed, per chain" in state["text"]
    assert_first_screen_shows_the_findings(state)
    first = tmp_path / "first-screen.png"
    first.write_bytes(base64.b64decode(first_screen["data"]))
    assert image.imread(first).shape[:2] == (SCREEN[1], SCREEN[0])

    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(screenshot["data"]))
    pixels = image.imread(png)
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 50_000
    assert pixels.shape[0] >= size["height"] - 1 and pixels.shape[1] >= 1000
    assert pixels.std() > 0.05  # not a blank page


def assert_first_screen_shows_the_findings(state: dict) -> None:
    """The report opens with the findings: on the first 1280×800 screen are the overview figure and
    a sentence per question of the chain's first step, with its number, CI and q, linking to the
    evidence; missing answers are flagged; the metadata comes below."""
    assert state["viewport"] == list(SCREEN)
    assert state["firstSection"] == "findings"
    height = SCREEN[1]
    visible = [el for el in state["findings"] if el["top"] >= 0 and el["bottom"] <= height]
    overview = [el for el in visible if el["tag"] == "IMG"]
    assert len(overview) == 1, state["findings"]
    sentences = [el for el in visible if el["tag"] == "LI"]
    md3, opinions = (
        next(el for el in sentences if el["step"] == "demo: demo-base → demo-sft" and el["text"].startswith(question))
        for question in ("Dialects: MD3 generated_correct US − Indian gap", "Countries: GlobalOpinionQA")
    )
    assert re.search(
        r"gap: (widened|narrowed|no significant change) \([+-]\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\], q = ", md3["text"]
    )
    assert "#task-md3_taboo" in md3["links"] and "#task-global_opinions" in opinions["links"]
    assert "Missing answers" in state["text"] and "demo-sft: 3 of 60 md3_taboo answers (5.0%)" in state["text"]
    assert "demo-base: 0 of 60" not in state["text"]  # under 1%: not flagged
    assert state["metadataTop"] > max(el["bottom"] for el in sentences)


def page_errors(events: list[dict]) -> list[dict]:
    """Uncaught exceptions, console and log errors, and failed loads."""
    return [
        event
        for event in events
        if event["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")
        or (event["method"] == "Runtime.consoleAPICalled" and event["params"]["type"] in ("error", "assert"))
        or (event["method"] == "Log.entryAdded" and event["params"]["entry"]["level"] == "error")
    ]


def outside_requests(events: list[dict]) -> list[str]:
    """URLs requested other than the report file itself and its inline (data:) figures."""
    urls = [event["params"]["request"]["url"] for event in events if event["method"] == "Network.requestWillBeSent"]
    return [url for url in urls if not url.startswith(("file:", "data:"))]


class DevTools:
    """The DevTools protocol over Chromium's pipe; every wait ends by ``deadline`` (monotonic)."""

    def __init__(self, to_browser: int, from_browser: int, deadline: float):
        self.to_browser, self.from_browser, self.deadline = to_browser, from_browser, deadline
        self.received = bytearray()
        self.events: list[dict] = []  # every event so far, in order
        self.last_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Run one command and return its result."""
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.to_browser, data) :]
        while True:
            reply = self._receive()
            if reply.get("id") == self.last_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]

    def wait_for(self, method: str, session: str, after: int = 0) -> dict:
        """The first ``method`` event of ``session`` from the ``after``-th event on."""
        seen = after
        while True:
            for event in self.events[seen:]:
                if event["method"] == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            self._receive()

    def _receive(self) -> dict:
        """The next message; events are also kept in ``events``."""
        end = self.received.find(b"\0")
        while end < 0:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.from_browser], [], [], remaining)[0]:
                raise TimeoutError("no answer from chromium in time")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its DevTools pipe")
            searched = len(self.received)
            self.received += chunk
            end = self.received.find(b"\0", searched)
        message = json.loads(self.received[:end])
        del self.received[: end + 1]
        if "id" not in message:
            self.events.append(message)
        return message


@contextlib.contextmanager
def open_browser(chromium: str, profile: Path, log: Path):
    """Headless Chromium with its DevTools pipe; killed, with its process group, on exit (its
    crash handlers detach from the group and exit once the browser is gone)."""
    commands_read, commands_write = os.pipe()  # we write, Chromium reads (its fd 3)
    replies_read, replies_write = os.pipe()  # Chromium writes (its fd 4), we read
    # Its ends go to fds 3 and 4 in the child (moved by bash: dash takes single-digit fds only);
    # copied to fds >= 5 first, neither move can overwrite the other.
    child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5) for fd in (commands_read, replies_write))
    os.close(commands_read)
    os.close(replies_write)
    move_fds = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            ["bash", "-c", move_fds, chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,  # its own process group, so its helpers can be killed with it
        )
    os.close(child_in)
    os.close(child_out)
    try:
        yield DevTools(commands_write, replies_read, time.monotonic() + SESSION_TIMEOUT)
    finally:
        # The whole group, helpers included, before the launcher is reaped (its pid names the group).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(commands_write)
        os.close(replies_read)
