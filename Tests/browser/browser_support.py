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


# The web UI ---------------------------------------------------------------------------------

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def until(driver, what, condition, timeout=30):
    """Waits for `condition(driver)` to be truthy, polling every 50 ms; fails naming `what`."""
    # Pages redraw parts of themselves: an element found a moment ago may be gone; look again.
    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)) \
        .until(condition, "timed out waiting for " + what)


def click(driver, selector, timeout=30):
    """Clicks the element matching `selector`, finding it again if the page redrew it."""
    def clicked(d):
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True
    until(driver, "to click " + selector, clicked, timeout)


def css(driver, selector, timeout=30):
    """The first visible element matching `selector`, once there is one."""
    return until(driver, selector, EC.visibility_of_element_located((By.CSS_SELECTOR, selector)), timeout)


def ui_login(driver, username, password, expect_path="/projects"):
    """Signs in through the login page (the driver must be on it) and waits to leave it."""
    css(driver, "input[name=username]").send_keys(username)
    css(driver, "input[name=password]").send_keys(password)
    css(driver, "form button[type=submit]").click()
    until(driver, "the page after signing in", lambda d: d.current_url.split("?")[0].endswith(expect_path))
    until(driver, "the page to be drawn", lambda d: not d.find_elements(By.CSS_SELECTOR, "main > p.muted:only-child"))


def ui_browser_login(username, password, width=1280, height=900):
    """A fresh browser signed in through the UI's login page."""
    driver = browser()
    driver.set_window_size(width, height)
    driver.get(HUB + "/login")
    ui_login(driver, username, password)
    return driver


def screenshot(driver, name):
    driver.save_screenshot(os.path.join(OUTPUT, name + ".png"))


def assert_console_clean(driver, page, allowed=()):
    """No console errors since the last check, except messages containing one of `allowed`."""
    errors = [entry["message"] for entry in console_errors(driver)
              if not any(pattern in entry["message"] for pattern in allowed)]
    assert not errors, f"console errors on {page}: {errors}"


def create_user(admin_token, username, password, admin=False):
    api("POST", "/api/users", admin_token, {"username": username, "password": password, "admin": admin})
    return api("POST", "/api/auth/login", body={"username": username, "password": password})["token"]
