"""What a user sees in `mlflow ui` after a seed sweep, read from the page in headless Chromium.

Needs Debian's `chromium` (apt-get install -y chromium); skipped without it.
"""
import html
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from projects import environment, make_project, py, run, store, tool

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_text(url, profile):
    """The rendered page as text (scripts run, styles dropped), in a fresh browser profile."""
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={profile}", "--window-size=1600,1000",
                           "--virtual-time-budget=30000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180)
    dom = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", proc.stdout, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


@pytest.fixture
def ui(tmp_path):
    """A project after a 2 cells x 2 seeds sweep, its `mlflow ui` address and the sweep's
    printed links."""
    project = make_project(tmp_path / "repo")
    sweep = run(py("pipeline.train", "-m", "model.cell=rnn,lstm", "seed=0,1",
                   "hydra.sweep.dir=sweep"), project)
    links = re.findall(r"(/#/experiments/\S+)", sweep.stdout)
    port = free_port()
    server = subprocess.Popen(tool("mlflow", "ui", "--backend-store-uri", store(project),
                                   "--host", "127.0.0.1", "--port", str(port)),
                              cwd=project, env=environment(project),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{address}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("mlflow ui did not start")
                time.sleep(1)
        yield address, links
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium: apt-get install -y chromium")
def test_mlflow_ui_opens_the_runs_table_and_the_parent_shows_the_summary(ui, tmp_path):
    address, links = ui
    assert len(links) == 2, links                  # the runs table, the sweep's parent run
    runs_page = page_text(address + links[0], tmp_path / "profile1")
    assert "Runs - Experiment" in runs_page         # the page's title: the runs table
    assert "sweep sweep" in runs_page and "5 matching runs" in runs_page
    assert "Token Usage" not in runs_page           # not the GenAI overview
    parent_page = page_text(address + links[1], tmp_path / "profile2")
    assert "Description" in parent_page and "t-interval over seeds" in parent_page
    for name in ("lstm", "rnn"):
        assert re.search(rf"\| {name} \| 2 \| [0-9.e-]+ ± [0-9.e-]+", parent_page) or \
            re.search(rf"{name} 2 [0-9.e-]+ ± ", parent_page), parent_page[:3000]
    assert "Welch" in parent_page
    assert "lstm s0" in parent_page and "rnn s1" in parent_page   # its child runs, by name
