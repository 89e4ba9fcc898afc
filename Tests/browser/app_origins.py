"""Browser test against a hub started with --apps-url (scripts/browser-tests.sh runs it against
a hub of its own, `--apps-url http://localhost:{port} --public-url http://127.0.0.1:{port}`):
a user's app opens on the user's own origin, `http://hana.localhost:{port}/u/hana/site/`, signed
in there through the hub without a second password; the app's page can reach neither the hub's
API on its own origin nor, with the visitor's session, on the hub's; an admin opens the app
too, and a stopped project's page, on the hub's origin, leads on to the app origin once Start
has started it; signing out of the hub signs the browser out of the app origin as well, and
signing in again leads back to the app.
"""
import json
import urllib.error
import urllib.parse
import urllib.request

from selenium.webdriver.common.by import By

from browser_support import (HUB, PASSWORD, api, assert_console_clean, create_user, css, run, screenshot,
                             ui_browser_login, ui_login, until, wait_for)

HELLO = {"message": "Hello from Flask bot of user hana!"}

# Calls fetch(arguments[0], arguments[1]) in the page and answers what the page could read of it.
FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], arguments[1])
  .then((response) => response.text().then((body) => done({status: response.status, ok: response.ok, body})))
  .catch((error) => done({error: String(error)}));
"""


def shown_app_links(driver):
    return [link for link in driver.find_elements(By.CSS_SELECTOR, ".environment a.button") if link.is_displayed()]


def origin(url):
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def shows_hello(driver, app_url):
    """The browser has arrived at `app_url` and shows the hello app's JSON."""
    if driver.current_url != app_url:
        return False
    try:
        return json.loads(driver.find_element(By.TAG_NAME, "body").text) == HELLO
    except ValueError:
        return False


def arrive_at_app(driver, app_url, how, timeout=30):
    until(driver, f"the app at {app_url} {how}", lambda d: shows_hello(d, app_url), timeout)


def page_fetch(driver, url, options=None):
    return driver.execute_async_script(FETCH, url, options or {})


def hub_refuses(cookie):
    """The hub's API, sent the app origin's cookie as if it were the hub's, does not know the visitor."""
    request = urllib.request.Request(HUB + "/api/auth/me", headers={"Cookie": "envhub_session=" + cookie})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return f"{response.status} {response.read()[:200]!r}"
    except urllib.error.HTTPError as error:
        return None if error.code == 401 else f"{error.code}"


def isolation(driver, app_url):
    """What the app's page can reach, from its own origin."""
    app_origin = origin(app_url)
    driver.set_script_timeout(30)
    assert driver.execute_script("return document.cookie") == "", "the app's page reads the app origin's cookie"
    cookies = {cookie["name"]: cookie for cookie in driver.get_cookies()}
    session = cookies.get("envhub_session")
    assert session, f"no envhub_session cookie on {app_origin}: {list(cookies)}"
    assert session["httpOnly"] and session["domain"] == urllib.parse.urlsplit(app_url).hostname, \
        f"the app origin's cookie is not HttpOnly and host-only: {session}"
    refused = hub_refuses(session["value"])
    assert refused is None, f"the hub's /api/auth/me answered the app origin's cookie with {refused}"

    own = page_fetch(driver, "/api/auth/me")
    assert own.get("status") == 404, f"{app_origin}/api/auth/me answered the app's page {own}"
    hub = page_fetch(driver, HUB + "/api/auth/me", {"credentials": "include"})
    assert "error" in hub or not hub["ok"], f"the app's page read the hub's /api/auth/me with the visitor's session: {hub}"
    assert "hana" not in json.dumps(hub), f"the app's page learnt who visits it from the hub: {hub}"
    assert driver.current_url == app_url, driver.current_url
    # The two refusals above are logged to the console (404, the CORS block): expected here.
    driver.get_log("browser")


def main():
    status = api("GET", "/api/status")
    assert status.get("appsURL"), "this test needs a hub started with --apps-url (and --public-url), e.g. " \
        "--apps-url http://localhost:{port} --public-url http://127.0.0.1:{port}"
    apps = urllib.parse.urlsplit(status["appsURL"])
    app_url = f"{apps.scheme}://hana.{apps.netloc}/u/hana/site/"
    admin = api("POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
    hana = create_user(admin, "hana", "hana-password-1")
    api("POST", "/api/users/hana/projects", hana, {"name": "site", "template": "hello"})
    api("POST", "/api/users/hana/projects/site/activate", hana)
    try:
        wait_for("hana/site active", lambda: api("GET", "/api/users/hana/projects/site", hana)["state"] == "active", 90)

        driver = ui_browser_login("hana", "hana-password-1")
        try:
            # The project page's Open app link: a new tab, through the hub's sign-in to the app origin.
            driver.get(f"{HUB}/projects/hana/site")
            until(driver, "hana's Open app link", lambda d: [link.text for link in shown_app_links(d)] == ["Open app"])
            assert_console_clean(driver, "hana's project page")
            projects_tab = driver.current_window_handle
            shown_app_links(driver)[0].click()
            until(driver, "the app's tab", lambda d: len(d.window_handles) == 2)
            driver.switch_to.window([handle for handle in driver.window_handles if handle != projects_tab][0])
            arrive_at_app(driver, app_url, "after Open app")
            screenshot(driver, "app-origin")
            assert_console_clean(driver, "the app on its own origin")
            isolation(driver, app_url)
            driver.close()
            driver.switch_to.window(projects_tab)

            # The app's address on the hub, typed in: sent on to the app origin.
            driver.get(f"{HUB}/u/hana/site/")
            arrive_at_app(driver, app_url, "from the hub's address for it")

            # Signing out of the hub ends the app origin's session too.
            driver.get(f"{HUB}/projects")
            css(driver, "#logout").click()
            until(driver, "the login page after signing out", lambda d: d.current_url == HUB + "/login")
            driver.get(app_url)
            until(driver, "the hub's login page on opening the app signed out",
                  lambda d: d.current_url.split("?")[0] == HUB + "/login")
            css(driver, "input[name=username]")
            screenshot(driver, "app-origin-signed-out")
            # Signing in again leads back to the app, on its own origin.
            ui_login(driver, "hana", "hana-password-1", expect_path="/u/hana/site/")
            arrive_at_app(driver, app_url, "after signing in again")
        finally:
            driver.quit()

        # An admin opens hana's app too, on hana's origin, signed in there through the hub.
        driver = ui_browser_login("admin", PASSWORD)
        try:
            driver.get(f"{HUB}/u/hana/site/")
            arrive_at_app(driver, app_url, "for the admin")
            assert_console_clean(driver, "hana's app for the admin")
            api("POST", "/api/users/hana/projects/site/deactivate", admin)
            wait_for("hana/site inactive", lambda: api("GET", "/api/users/hana/projects/site", admin)["state"] == "inactive")
            # A stopped project is the hub's to show, on the hub's origin; there the admin's Start
            # (no auto-start for an admin) starts it and the page reloads on to the app origin.
            driver.get(f"{HUB}/u/hana/site/")
            assert driver.current_url == f"{HUB}/u/hana/site/" and "hana/site is" in driver.title, \
                f"the stopped project's address led to {driver.current_url} ({driver.title!r}), not the hub's page"
            css(driver, "#start").click()
            arrive_at_app(driver, app_url, "once Start on the stopped page has started the project", 90)
            assert_console_clean(driver, "the stopped page and the app after it")
        finally:
            driver.quit()
    finally:
        api("POST", "/api/users/hana/projects/site/deactivate", admin)
    print("browser: apps on origins of their own - opened via the hub's sign-in, cut off from the hub's API, "
          "an admin let in, signed out with the hub")


if __name__ == "__main__":
    run(main)
