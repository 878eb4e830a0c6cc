"""End to end in a real headless Chromium: the daemon serves the dashboard, a person approves a gated deploy.

The daemon (`python main.py run`) runs on the fake model over HTTP with a code task and
``approvals.required_for: [deploy]``; the browser logs in with the token, finds the task,
reads its timeline and diff, approves the deploy with the button and watches the task
page (live polling) turn to completed. Screenshots of each page go to the test's tmp dir.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/install_browser.sh``) and selenium;
without them the test skips and says why.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ai_agents.config import load_config
from ai_agents.domain import TaskStatus
from ai_agents.memory import Database, TaskStore
from tests.conftest import FAKE_KEY, REPO, wait_for
from tests.daemon import Daemon, cli
from tests.dashboard.conftest import DASHBOARD_TOKEN, PLANTED_TOKEN

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and HAVE_SELENIUM),
    reason=f"no headless browser here (chromium: {CHROMIUM}, chromedriver: {DRIVER}, selenium: {HAVE_SELENIUM}); "
           "run .ci/install_browser.sh (Debian's chromium and chromium-driver)")

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
TITLE = f"Add a slugify helper {XSS}"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(profile: Path):  # -> selenium WebDriver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))


def click(driver, by: str, value: str, within: float = 10) -> None:
    """Click an element of a polled page: found afresh until the click lands on a live element."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(d) -> bool:
        try:
            d.find_element(by, value).click()
            return True
        except (StaleElementReferenceException, NoSuchElementException):
            return False
    WebDriverWait(driver, within).until(attempt)


def test_daemon_dashboard_in_a_real_browser(fake_llm, write_config, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.pipeline.conftest import story_script

    fake_llm.set_script(story_script())
    port = free_port()
    config = write_config(fake_llm, {
        "deployment": {"enabled": True, "type": "ci_cd"}, "approvals": {"required_for": ["deploy"]},
        "dashboard": {"listen": f"127.0.0.1:{port}", "token": "${DASHBOARD_TOKEN}", "poll_seconds": 1}})
    settings = load_config(config, env={"DASHBOARD_TOKEN": DASHBOARD_TOKEN})
    shots = tmp_path / "screenshots"
    shots.mkdir()
    base = f"http://127.0.0.1:{port}"
    daemon = Daemon(config, env={"DASHBOARD_TOKEN": DASHBOARD_TOKEN}).start()
    driver = None
    try:
        daemon.wait_event("dashboard_started", timeout=30)
        submitted = cli(config, "submit", TITLE + "\n\ntextutils.slugify(text) turns a title into a URL slug.")
        assert submitted.returncode == 0, submitted.stderr
        task_id = submitted.stdout.split()[2].rstrip(":")
        tasks = TaskStore(Database(settings.memory.database_path))
        wait_for(lambda: tasks.get(task_id).status == TaskStatus.AWAITING_APPROVAL, timeout=60,
                 message="the code task waiting for its deploy approval")
        # A secret planted straight into a task's error row (no store-side redaction on the way in).
        planted = tasks.create("analysis", "Task whose error quotes secrets")
        tasks.db.execute("UPDATE tasks SET status = 'failed', error = ? WHERE id = ?",
                         (f"auth failed with {FAKE_KEY} and {PLANTED_TOKEN}", planted.id))

        with pytest.raises(urllib.error.HTTPError) as refused:  # no token, no page
            urllib.request.urlopen(base + "/tasks", timeout=10)
        assert refused.value.code == 401

        driver = browser(tmp_path / "chromium-profile")
        driver.get(base + "/")
        driver.find_element(By.ID, "token").send_keys(DASHBOARD_TOKEN)
        driver.find_element(By.ID, "login").click()
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.ID, "live"))
        assert "waiting for approval" in driver.page_source and "Daemon" in driver.page_source
        assert "healthy" in driver.find_element(By.CSS_SELECTOR, ".facts").text
        driver.save_screenshot(str(shots / "overview.png"))

        driver.find_element(By.LINK_TEXT, "Tasks").click()
        driver.find_element(By.ID, "q").send_keys("slugify")
        driver.find_element(By.ID, "search").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-id="{task_id}"]'))
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-id="{task_id}"]')
        assert TITLE in row.text  # the payload is shown as text
        driver.save_screenshot(str(shots / "tasks.png"))
        click(driver, By.CSS_SELECTOR, f'tr[data-id="{task_id}"] a')

        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "task-status"))
        assert driver.find_element(By.ID, "task-title").text == TITLE
        timeline = driver.find_element(By.CSS_SELECTOR, "table.timeline").text
        for step in ("tests_committed", "LLM call", "code_tested", "code_reviewed", "code_committed",
                     "branch_merged", "approval requested: deploy"):
            assert step in timeline, step
        assert "+def slugify" in driver.find_element(By.ID, "task-diff").text
        assert driver.execute_script("return window.__xss === undefined")
        driver.save_screenshot(str(shots / "task.png"))
        click(driver, By.PARTIAL_LINK_TEXT, "diff ")
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "commit-diff"))
        assert "Task-Id: " + task_id in driver.find_element(By.ID, "commit-diff").text
        driver.save_screenshot(str(shots / "commit.png"))

        driver.find_element(By.LINK_TEXT, "Charts").click()
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 6
        assert driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.s1")  # today's tokens drawn
        driver.save_screenshot(str(shots / "charts.png"))

        driver.find_element(By.PARTIAL_LINK_TEXT, "Approvals").click()
        item = driver.find_element(By.CSS_SELECTOR, f'.approval[data-task="{task_id}"]')
        assert "would: deploy commit" in item.text and "ci_cd" in item.text
        driver.save_screenshot(str(shots / "approvals.png"))
        click(driver, By.ID, f"approve-{task_id}")
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "no-pending"))

        driver.get(f"{base}/tasks/{task_id}")
        # The page polls itself: the status turns to completed without a reload.
        WebDriverWait(driver, 40).until(lambda d: d.find_element(By.ID, "task-status").text == "completed")
        assert "deployed" in driver.find_element(By.CSS_SELECTOR, "table.timeline").text
        assert driver.execute_script("return window.__xss === undefined")
        driver.save_screenshot(str(shots / "task-completed.png"))
        approval = tasks.approvals(None)[0]
        assert approval["status"] == "approved" and approval["decided_by"] == "dashboard (127.0.0.1)"
        assert tasks.get(task_id).result["deploy"]["status"] == "succeeded"

        for path in ("/", "/tasks", f"/tasks/{planted.id}", f"/tasks/{task_id}", "/approvals", "/charts",
                     f"/tasks?q={planted.id}"):
            driver.get(base + path)
            source = driver.page_source
            assert FAKE_KEY not in source and PLANTED_TOKEN not in source and DASHBOARD_TOKEN not in source, path
        driver.get(f"{base}/tasks/{planted.id}")
        assert driver.find_element(By.ID, "task-error").text == "auth failed with [REDACTED] and [REDACTED]"
        driver.get(base + "/")
        driver.save_screenshot(str(shots / "overview-after.png"))
        assert all((shots / f"{n}.png").stat().st_size > 5000
                   for n in ("overview", "tasks", "task", "commit", "charts", "approvals", "task-completed"))

        # `python main.py dashboard` on a non-loopback address: nothing without the token.
        remote = free_port()
        out = tmp_path / "dashboard-cli.out"
        with open(out, "w") as sink:
            proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "dashboard", "--config", str(config),
                                     "--listen", f"0.0.0.0:{remote}"], cwd=REPO, stdout=sink,
                                    stderr=subprocess.STDOUT, env={**os.environ, "DASHBOARD_TOKEN": DASHBOARD_TOKEN})
        try:
            wait_for(lambda: f"dashboard: http://0.0.0.0:{remote}/ (token required)" in out.read_text(),
                     timeout=20, message="the dashboard command serving")
            for path in ("/", "/approvals", f"/tasks/{task_id}", "/static/app.js"):
                with pytest.raises(urllib.error.HTTPError) as refused:
                    urllib.request.urlopen(f"http://127.0.0.1:{remote}{path}", timeout=10)
                assert refused.value.code == 401, path
            driver.delete_all_cookies()
            driver.get(f"http://127.0.0.1:{remote}/tasks/{task_id}")
            assert driver.find_elements(By.ID, "token") and "Add a slugify helper" not in driver.page_source
            driver.save_screenshot(str(shots / "remote-login.png"))
            asked = urllib.request.Request(f"http://127.0.0.1:{remote}/tasks/{task_id}",
                                           headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"})
            with urllib.request.urlopen(asked, timeout=10) as page:
                assert "completed" in page.read().decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
    finally:
        if driver is not None:
            driver.quit()
        daemon.signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        finally:
            daemon.stop()
