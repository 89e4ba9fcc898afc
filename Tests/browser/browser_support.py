"""What the browser tests share: the hub's address and admin password (from
scripts/browser-tests.sh), API calls, waiting with a deadline, and a headless Chromium."""
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

HUB = os.environ["HUB_URL"]
PASSWORD = os.environ["ADMIN_PASSWORD"]
OUTPUT = os.environ["OUTPUT_DIR"]


def api(method, path, token=None, body=None):
    request = urllib.request.Request(HUB + path, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def wait_for(what, condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def signed_in_browser(token):
    """A browser holding the session cookie for `token` (the web UI's login page comes later)."""
    driver = browser()
    driver.get(HUB + "/healthz")  # the cookie belongs to the hub's origin
    driver.add_cookie({"name": "envhub_session", "value": token, "path": "/"})
    driver.get_log("browser")  # forget the bootstrap page's messages (it has no favicon)
    return driver


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def run(main):
    """Runs a test's main; a failed assertion is reported in one line and exits 1."""
    try:
        main()
    except AssertionError as error:
        print(f"browser: FAILED: {error}", file=sys.stderr)
        sys.exit(1)
