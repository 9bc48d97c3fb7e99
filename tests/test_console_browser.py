"""The operator console in a real browser (headless Chromium driven by Selenium) against a
running `odoofleet dev --sandbox-server`: the one-click login link, the fleet updating without
a reload, the stop button, the operation timeline and health chart, a refusal's detail, a
view-only token without write buttons, another organization's instance as "not found", the
offline API docs, and dev's quiet output down to the one line Ctrl-C prints.

The tests run in file order and share one odoofleet and one browser (module fixtures): each
starts where the previous one left the instance. Screenshots go to ODOOFLEET_TEST_ARTIFACTS
(default: a pytest temporary directory), named after the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pytest
import pytest_asyncio
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from sshd_harness import free_port
from waiting import eventually

from api.tokens import mint_token
from odoofleet.settings import load_settings

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BANNER = re.compile(r"^  console:  (?P<base>http://[^/]+)/#token=(?P<token>\S+)$", re.M)


@dataclass
class Dev:
    base: str
    link: str
    token: str
    jwt_secret: str
    log: Path
    process: asyncio.subprocess.Process

    def mint(self, org: str, *permissions: str) -> str:
        settings = load_settings({}, jwt_secret=self.jwt_secret)
        return mint_token(
            settings.for_api(), org=org, sub=f"{org}-user", name="Viewer", permissions=permissions,
            ttl_seconds=600,
        )  # fmt: skip

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10)


@dataclass
class Shared:
    """What one test leaves for the next."""

    instance_id: str = ""


def _with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(url), "dbname": dbname})


@pytest_asyncio.fixture(scope="module")
async def dev(
    pg_server_url: str, template_db: str, nats_server_url: str, tmp_path_factory: Any
) -> AsyncIterator[Dev]:
    """`odoofleet dev --sandbox-server` as a user starts it, on a database of its own."""
    tag = secrets.token_hex(4)
    dbname = f"odoofleet_console_{tag}"
    admin = _with_dbname(pg_server_url, "postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{template_db}"'.encode())
    work = tmp_path_factory.mktemp("console-dev")
    jwt_secret = secrets.token_urlsafe(48)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ODOOFLEET_", "PYTHONWARN"))},
        "DATABASE_URL": _with_dbname(pg_server_url, dbname),
        "NATS_URL": nats_server_url,
        "ODOOFLEET_NATS_STREAM": f"TEST_CONSOLE_{tag.upper()}",
        "ODOOFLEET_SUBJECT_PREFIX": f"console{tag}",
        "ODOOFLEET_JWT_SECRET": jwt_secret,  # so that the tests can mint other callers' tokens
        "ODOOFLEET_HEALTH_INTERVAL": "1",  # a health score within seconds of running
    }
    log = work / "dev.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "odoofleet", "dev", "--sandbox-server",
            "--port", str(free_port()), "--data-dir", str(work / "data"),
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        await eventually(
            lambda: BANNER.search(log.read_text()) is not None or process.returncode is not None,
            timeout=120,
            interval=0.1,
            message="odoofleet dev's banner",
        )
        found = BANNER.search(log.read_text())
        assert found is not None, log.read_text()
        yield Dev(
            base=found["base"],
            link=found[0].split()[-1],
            token=found["token"],
            jwt_secret=jwt_secret,
            log=log,
            process=process,
        )
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'.encode())
        nc = await nats.connect(nats_server_url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(f"TEST_CONSOLE_{tag.upper()}")
        finally:
            await nc.close()


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = _browser_missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--lang=en-GB"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shared() -> Shared:
    return Shared()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: Any) -> Path:
    where = os.environ.get("ODOOFLEET_TEST_ARTIFACTS")
    folder = Path(where) / "console" if where else tmp_path_factory.mktemp("console-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for(driver: WebDriver, css: str, timeout: float = 20) -> Any:
    """The first element matching `css` once it exists."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, css) or False
        )[0]
    except TimeoutException:
        raise AssertionError(f"no {css!r} within {timeout}s on {driver.current_url}") from None


def text_of(driver: WebDriver, css: str) -> str:
    def found(d: WebDriver) -> str | bool:
        try:
            return " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, css)) or False
        except StaleElementReferenceException:  # redrawn by a refresh in between
            return False

    return str(WebDriverWait(driver, 10, poll_frequency=0.1).until(found))


def text_with(driver: WebDriver, css: str, needle: str, timeout: float = 20) -> str:
    """The text of `css` once it contains `needle`."""

    def found(d: WebDriver) -> str | bool:
        try:
            text = " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, css))
        except StaleElementReferenceException:
            return False
        return text if needle in text else False

    try:
        return str(WebDriverWait(driver, timeout, poll_frequency=0.1).until(found))
    except TimeoutException:
        seen = [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
        raise AssertionError(f"{needle!r} never in {css!r}: {seen}") from None


def click(driver: WebDriver, css: str, timeout: float = 20) -> None:
    """Click `css` once it is enabled; a page redrawn in between is retried."""

    def clicked(d: WebDriver) -> bool:
        try:
            elements = d.find_elements(By.CSS_SELECTOR, css)
            if elements and elements[0].is_enabled():
                elements[0].click()
                return True
        except StaleElementReferenceException:
            pass
        return False

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(clicked)


def sign_in_by_form(driver: WebDriver, dev: Dev, token: str) -> None:
    driver.get(f"{dev.base}/login")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{dev.base}/login")
    wait_for(driver, "#token-input").send_keys(token)
    click(driver, "#login-form button[type=submit]")
    wait_for(driver, "#fleet")


def test_a_refused_token_is_said_on_the_sign_in_page(dev: Dev, browser: WebDriver) -> None:
    browser.get(f"{dev.base}/")

    wait_for(browser, "#token-input").send_keys("not-a-token")
    click(browser, "#login-form button[type=submit]")

    assert "That token was refused" in text_with(browser, "#login-error", "refused")
    assert not browser.find_element(By.ID, "top").is_displayed()  # no menu before signing in
    assert browser.execute_script("return sessionStorage.getItem('odoofleet.token')") is None


def test_the_login_link_signs_in_and_leaves_no_token_in_the_url_or_a_cookie(
    dev: Dev, browser: WebDriver
) -> None:
    browser.get(dev.link)

    wait_for(browser, "#fleet")
    assert browser.current_url == f"{dev.base}/"
    assert browser.execute_script("return sessionStorage.getItem('odoofleet.token')") == dev.token
    assert browser.get_cookies() == []
    assert "Developer" in text_of(browser, "#who")
    assert browser.find_element(By.ID, "top").is_displayed()


def test_an_instance_created_through_the_api_turns_running_on_the_fleet_page_without_reload(
    dev: Dev, browser: WebDriver, shared: Shared, shots: Path
) -> None:
    wait_for(browser, "#fleet")
    browser.execute_script("window.sameDocument = true")
    with dev.api() as api:
        [server] = api.get("/api/servers").json()["servers"]
        body = {"name": "Acme Console", "serverId": server["id"]}
        created = api.post("/api/instances", json=body)
    assert created.status_code == 202, created.text
    shared.instance_id = created.json()["id"]
    row = f'#fleet tr[data-instance-id="{shared.instance_id}"]'

    wait_for(browser, row)
    wait_for(browser, f'{row} [data-status="running"]', timeout=90)

    assert browser.execute_script("return window.sameDocument") is True
    assert "sandbox" in text_of(browser, row)
    browser.save_screenshot(str(shots / "fleet.png"))


def test_the_fleet_searches_by_name_or_slug_and_filters_by_status(
    browser: WebDriver, shared: Shared
) -> None:
    row = f'#fleet tr[data-instance-id="{shared.instance_id}"]'
    search = browser.find_element(By.ID, "fleet-search")

    search.send_keys("no such instance")
    WebDriverWait(browser, 5).until(lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    search.clear()
    search.send_keys("acme-con")  # the slug
    wait_for(browser, row)
    Select(browser.find_element(By.ID, "fleet-status")).select_by_value("stopped")
    WebDriverWait(browser, 5).until(lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    Select(browser.find_element(By.ID, "fleet-status")).select_by_value("running")
    wait_for(browser, row)


def test_the_instance_page_draws_the_health_chart_and_the_operation_timeline(
    dev: Dev, browser: WebDriver, shared: Shared, shots: Path
) -> None:
    click(browser, f'#fleet tr[data-instance-id="{shared.instance_id}"] a.name')

    wait_for(browser, '#timeline li[data-type="provision"] [data-status="succeeded"]')
    wait_for(browser, "#factor-chart .factor-bar", timeout=60)
    wait_for(browser, "#health-sparkline .availability-bucket", timeout=30)

    bars = browser.find_elements(By.CSS_SELECTOR, "#factor-chart .factor-bar")
    assert {b.get_attribute("data-factor") for b in bars} == {
        "availability", "latency", "stability", "headroom", "freshness",
    }  # fmt: skip
    assert "ms" in text_of(browser, '#timeline li[data-type="provision"] .step-time')
    assert "sandbox" in text_of(browser, "#settings")  # the server by its name
    browser.save_screenshot(str(shots / "instance.png"))


def test_the_stop_button_asks_then_stops_the_instance(
    dev: Dev, browser: WebDriver, shared: Shared
) -> None:
    click(browser, "#action-stop")
    assert "Stop Acme Console?" in text_of(browser, "#confirm[open] #confirm-text")
    click(browser, "#confirm-ok")

    wait_for(browser, '.page-head [data-status="stopped"]', timeout=60)
    wait_for(browser, '#timeline li[data-type="stop"] [data-status="succeeded"]')
    assert not wait_for(browser, "#action-stop").is_enabled()
    assert "only a running instance can stop" in text_of(browser, "#actions .reason")
    with dev.api() as api:
        assert api.get(f"/api/instances/{shared.instance_id}").json()["status"] == "stopped"


def test_a_refused_action_shows_the_problems_detail(
    dev: Dev, browser: WebDriver, shared: Shared
) -> None:
    # The page keeps showing "stopped" (its refresh fails: its operations read is blocked)
    # while the API starts the instance: the page's Start is then refused with 409.
    operations = f"{dev.base}/api/instances/{shared.instance_id}/operations"
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": [operations]})
    try:
        with dev.api() as api:
            path = f"/api/instances/{shared.instance_id}/control"
            started = api.post(path, json={"action": "start"})
        assert started.status_code == 202, started.text
        click(browser, "#action-start")
        click(browser, "#confirm-ok")

        flash = text_with(browser, "#flash:not([hidden]) .flash-text", "(409)")
        assert "{" not in flash  # the problem's words, not its JSON
        assert "start" in flash.lower()
        wait_for(browser, "#offline:not([hidden])")  # its failed refreshes, said quietly
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    wait_for(browser, '.page-head [data-status="running"]', timeout=60)


def test_a_view_only_token_sees_no_write_buttons(
    dev: Dev, browser: WebDriver, shared: Shared, shots: Path
) -> None:
    viewer = dev.mint("default", "view:instances", "view:servers", "view:audit")
    sign_in_by_form(browser, dev, viewer)
    assert "view only" in text_of(browser, "#who")

    browser.get(f"{dev.base}/instances/{shared.instance_id}")
    wait_for(browser, "#settings dl")
    wait_for(browser, "#audit-trail table")
    assert browser.find_elements(By.CSS_SELECTOR, "#actions button") == []

    browser.get(f"{dev.base}/servers")
    wait_for(browser, "#servers tr[data-server-id]")
    assert browser.find_elements(By.CSS_SELECTOR, "button.validate") == []
    browser.save_screenshot(str(shots / "servers.png"))


def test_another_organizations_instance_is_not_found(
    dev: Dev, browser: WebDriver, shared: Shared
) -> None:
    outsider = dev.mint("another-org", "manage:instances", "view:audit")
    sign_in_by_form(browser, dev, outsider)
    assert "No instances yet" in text_of(browser, "#fleet .empty")

    browser.get(f"{dev.base}/instances/{shared.instance_id}")

    assert text_of(browser, "#not-found h1") == "Instance not found"
    assert browser.find_elements(By.CSS_SELECTOR, "#actions button") == []


def test_an_api_key_signs_in_and_a_refusal_shows_the_403s_detail(
    dev: Dev, browser: WebDriver, shared: Shared
) -> None:
    # A key's permissions cannot be read in the browser: its buttons are shown, and the
    # server's refusal is what the operator sees.
    with dev.api(dev.mint("default", "manage:api-keys", "view:instances")) as api:
        made = api.post(
            "/api/api-keys", json={"name": "console", "permissions": ["view:instances"]}
        )
    assert made.status_code == 201, made.text
    sign_in_by_form(browser, dev, made.json()["key"])
    assert text_of(browser, "#who") == "API key"

    browser.get(f"{dev.base}/instances/{shared.instance_id}")
    click(browser, "#action-restart")
    click(browser, "#confirm-ok")

    flash = text_with(browser, "#flash:not([hidden]) .flash-text", "(403)")
    assert "manage:instances" in flash
    assert "Needs the view:audit permission" in text_of(browser, "#audit-trail")


def test_the_audit_page_lists_who_did_what(dev: Dev, browser: WebDriver, shots: Path) -> None:
    sign_in_by_form(browser, dev, dev.token)
    browser.get(f"{dev.base}/audit")

    wait_for(browser, "#audit tbody tr")
    actions = text_of(browser, "#audit tbody")
    assert "instance.created" in actions
    assert "instance.stopped" in actions
    browser.save_screenshot(str(shots / "audit.png"))


def test_the_audit_page_exports_what_it_found_as_csv_and_json(
    dev: Dev, browser: WebDriver, tmp_path: Path
) -> None:
    browser.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    browser.find_element(By.CSS_SELECTOR, "#audit-form input[name=action]").send_keys(
        "instance.stopped"
    )
    click(browser, "#audit-form button[type=submit]")
    text_with(browser, ".pager", "· 1 entry")
    click(browser, "#export-csv")
    click(browser, "#export-json")

    csv_file, json_file = tmp_path / "odoofleet-audit.csv", tmp_path / "odoofleet-audit.json"
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda _: csv_file.exists() and json_file.exists()
    )
    header, row = csv_file.read_text().splitlines()
    assert header.startswith("createdAt,action,resourceType,resourceId")
    assert ",instance.stopped,instance," in row
    [entry] = json.loads(json_file.read_text())
    assert entry["action"] == "instance.stopped"


def test_the_api_docs_render_from_odoofleets_own_assets(
    dev: Dev, browser: WebDriver, shots: Path
) -> None:
    browser.get(f"{dev.base}/schema")

    wait_for(browser, ".swagger-ui .opblock", timeout=30)
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    assert loaded
    assert all(url.startswith(dev.base) for url in loaded), loaded  # nothing from a CDN
    browser.save_screenshot(str(shots / "schema.png"))


def test_no_page_broke_the_content_security_policy_or_threw(browser: WebDriver) -> None:
    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]
    ]
    assert problems == []


async def test_dev_printed_no_warnings_and_ctrl_c_prints_one_line(dev: Dev) -> None:
    headers = {"Authorization": f"Bearer {dev.token}"}
    async with (
        httpx.AsyncClient(base_url=dev.base, headers=headers, timeout=30) as client,
        client.stream("GET", "/api/events/stream") as events,  # open while odoofleet stops
    ):
        assert events.status_code == 200
        await anext(events.aiter_lines())
        before = dev.log.read_text()
        dev.process.send_signal(signal.SIGINT)
        await asyncio.wait_for(dev.process.wait(), 60)
    after = dev.log.read_text()[len(before) :]

    assert dev.process.returncode == 0
    assert after.strip().splitlines() == ["odoofleet dev stopped."]
    assert "Warning" not in before, before
    assert '"GET /' not in before  # no access log without --verbose
    assert before.lstrip().startswith("odoofleet is running at"), before
    assert "  API docs: " in before
    assert "  server:   sandbox" in before
