"""The console in a real browser: Debian's chromium, driven by Selenium through Debian's
chromium-driver. Logs in, explains a text and sees the hit highlighted (and its hover
text), reviews queued verdicts with the keyboard, opens a group's page and sees the
terms' precision change on the feedback page; and adds a term to a draft of the lists
and sees its lint finding. Screenshots
of each page go to var/screenshots/console/ (git-ignored) for a person to look at.

Skipped with the reason where chromium or chromedriver is missing (``apt-get install
chromium chromium-driver``); under CI=true that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator

import pytest

from screening.console.sessions import SessionSigner
from tests.fixtures import REPO
from tests.fixtures.console import PASSWORD, SECRET, Site, verdict_record

SHOTS = REPO / "var" / "screenshots" / "console"
pytestmark = pytest.mark.parametrize("record_store", ["sqlite"], indirect=True)


@pytest.fixture
def browser() -> Iterator[object]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        reason = "no chromium/chromedriver on PATH (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true: the browser tests must run")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="screening-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.implicitly_wait(5)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield chrome
    chrome.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _shot(chrome, name: str) -> None:
    assert chrome.save_screenshot(str(SHOTS / f"{name}.png"))


def _reviews(site: Site) -> dict[str, str]:
    rows = site.store.query("SELECT message_id, detail FROM records WHERE kind = 'review'")
    return {message_id: json.loads(detail)["outcome"] for message_id, detail in rows}


def test_log_in_explain_and_review_with_the_keyboard(console_site: Site, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    chrome = browser
    # production cookies: Secure is honoured on 127.0.0.1, a trustworthy origin
    console_site.console.signer = SessionSigner(SECRET, secure=True)
    name = console_site.add_user("admin")
    now = time.time()
    console_site.store.append([verdict_record("m1", "来赌博吧", at=now - 20),
                               verdict_record("m2", "百家乐上线了", term="百家乐", at=now - 10),
                               verdict_record("m3", "今晚赌博", at=now)])  # fmt: skip
    wait = WebDriverWait(chrome, 20)

    chrome.get(f"{console_site.url}/console/explain")  # no session: sent to log in
    wait.until(ready.presence_of_element_located((By.ID, "login")))
    _shot(chrome, "01-login")
    chrome.find_element(By.ID, "name").send_keys(name)
    chrome.find_element(By.ID, "password").send_keys(PASSWORD)
    chrome.find_element(By.ID, "login").click()

    text = wait.until(ready.presence_of_element_located((By.ID, "text")))
    text.send_keys("今晚一起去ＤＵ博吗")
    chrome.find_element(By.ID, "explain").click()
    mark = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "mark.hit")))
    assert mark.text == "ＤＵ博"
    tip = mark.get_attribute("data-tip")
    assert "赌博" in tip and "gambling" in tip and "pinyin" in tip
    assert chrome.find_element(By.ID, "decision").text == "block"
    ActionChains(chrome).move_to_element(mark).perform()
    _shot(chrome, "02-explain")

    chrome.get(f"{console_site.url}/console/feedback")
    assert "0 review outcome(s)" in chrome.find_element(By.ID, "totals").text

    chrome.get(f"{console_site.url}/console/review")
    items = wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, "#queue .item")))
    assert len(items) == 3 and "selected" in items[0].get_attribute("class")
    _shot(chrome, "03-review")
    body = chrome.find_element(By.TAG_NAME, "body")
    body.send_keys("j")  # the second, m2
    assert "selected" in chrome.find_elements(By.CSS_SELECTOR, "#queue .item")[1].get_attribute("class")
    body.send_keys("c")
    wait.until(ready.presence_of_element_located((By.ID, "done")))
    assert _reviews(console_site) == {"m2": "confirmed"}
    chrome.find_element(By.TAG_NAME, "body").send_keys("o")  # the first again: m3
    wait.until(lambda c: len(c.find_elements(By.CSS_SELECTOR, "#queue .item")) == 1)
    assert _reviews(console_site) == {"m2": "confirmed", "m3": "overturned"}
    assert [e["message_id"] for e in console_site.sent] == ["m2", "m3"]
    assert "no measure rested on it alone" in chrome.find_element(By.ID, "lifted").text
    _shot(chrome, "04-review-done")

    chrome.get(f"{console_site.url}/console/subjects?group=g1")
    wait.until(ready.presence_of_element_located((By.ID, "history")))
    _shot(chrome, "05-group")

    chrome.get(f"{console_site.url}/console/feedback")  # the terms' precision has changed
    rows = {row.get_attribute("data-name"): row.find_element(By.CLASS_NAME, "precision").text
            for row in chrome.find_elements(By.CSS_SELECTOR, "#terms tr[data-name]")}  # fmt: skip
    assert rows == {"赌博": "0 %", "百家乐": "100 %"}
    lists = {row.get_attribute("data-name"): row.find_element(By.CLASS_NAME, "precision").text
             for row in chrome.find_elements(By.CSS_SELECTOR, "#lists tr[data-name]")}  # fmt: skip
    assert lists == {"gambling": "50 %"}  # per list file: both terms are gambling.txt's
    _shot(chrome, "06-feedback")


def test_add_a_term_to_a_draft_and_see_the_lint_finding(lists_site: Site, browser, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    chrome, wait = browser, WebDriverWait(browser, 30)
    name = lists_site.add_user("analyst")
    lists_site.store.append([verdict_record("m1", "来赌博吧")])
    chrome.get(f"{lists_site.url}/console/login")
    chrome.find_element(By.ID, "name").send_keys(name)
    chrome.find_element(By.ID, "password").send_keys(PASSWORD)
    chrome.find_element(By.ID, "login").click()
    wait.until(ready.presence_of_element_located((By.ID, "nav-lists"))).click()
    row = wait.until(ready.presence_of_element_located(
        (By.CSS_SELECTOR, '#entries tr[data-text="赌博"] .hits')))  # fmt: skip
    assert row.text == "1"
    _shot(chrome, "07-lists")

    chrome.find_element(By.ID, "lists-draft").click()
    wait.until(ready.presence_of_element_located((By.ID, "start"))).click()
    form = wait.until(ready.presence_of_element_located((By.ID, "add-form")))
    form.find_element(By.NAME, "category").send_keys("gambling")
    form.find_element(By.NAME, "term").send_keys("打牌")
    form.find_element(By.ID, "add").click()
    wait.until(ready.presence_of_element_located((By.ID, "done")))
    lint = chrome.find_element(By.CSS_SELECTOR, '#draft-terms tr[data-text="打牌"] .lint')
    assert lint.text.startswith("benign-hit") and "周末一起打牌吧" in lint.text
    assert "benign-hit" in chrome.find_element(By.ID, "findings").text
    assert "+ term gambling/打牌" in chrome.find_element(By.ID, "changes").text
    _shot(chrome, "08-draft-lint")

    spreadsheet = tmp_path / "terms.csv"
    spreadsheet.write_text("term,severity\n刷单,review\n", encoding="utf-8")
    upload = chrome.find_element(By.ID, "upload-form")
    upload.find_element(By.ID, "csv-file").send_keys(str(spreadsheet))
    area = upload.find_element(By.NAME, "csv")
    wait.until(lambda _: "刷单,review" in area.get_property("value"))  # read by console.js
    upload.find_element(By.NAME, "category").send_keys("fraud")
    upload.find_element(By.ID, "upload").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, '#draft-terms tr[data-text="刷单"]')))
