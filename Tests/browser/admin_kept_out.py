"""Browser test against a hub started with --no-admin-app-access (scripts/browser-tests.sh
runs it against a second hub of its own): an admin on a user's project page is not offered
its app, and opening the app's address anyway shows the hub's refusal; the owner is offered
the app and it opens.
"""
from selenium.webdriver.common.by import By

from browser_support import (HUB, PASSWORD, api, assert_console_clean, create_user, run, screenshot, ui_browser_login,
                             until, wait_for)


def shown_app_links(driver):
    return [link for link in driver.find_elements(By.CSS_SELECTOR, ".environment a.button") if link.is_displayed()]


def project_page(driver, owner, name):
    driver.get(f"{HUB}/projects/{owner}/{name}")
    until(driver, f"{owner}/{name} shown as active", lambda d: any(
        badge.get_attribute("data-state") == "active" for badge in d.find_elements(By.CSS_SELECTOR, ".environment .badge")))


def main():
    assert api("GET", "/api/status")["adminAppAccess"] is False, "this test needs a hub started with --no-admin-app-access"
    admin = api("POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
    gina = create_user(admin, "gina", "gina-password-1")
    api("POST", "/api/users/gina/projects", gina, {"name": "site", "template": "hello"})
    api("POST", "/api/users/gina/projects/site/activate", gina)
    wait_for("gina/site active", lambda: api("GET", "/api/users/gina/projects/site", gina)["state"] == "active")

    driver = ui_browser_login("admin", PASSWORD)
    try:
        project_page(driver, "gina", "site")
        assert not shown_app_links(driver), "the admin is offered gina's app"
        assert_console_clean(driver, "gina's project page, for the admin")
        driver.get(f"{HUB}/u/gina/site/")
        refusal = driver.find_element(By.TAG_NAME, "body").text
        assert "ENVHUB_ADMIN_APP_ACCESS=false" in refusal, refusal
        screenshot(driver, "admin-kept-out")
    finally:
        driver.quit()

    driver = ui_browser_login("gina", "gina-password-1")
    try:
        project_page(driver, "gina", "site")
        until(driver, "gina's Open app link", lambda d: [link.text for link in shown_app_links(d)] == ["Open app"])
        driver.get(f"{HUB}/u/gina/site/")
        answer = driver.find_element(By.TAG_NAME, "body").text
        assert "Hello from Flask bot of user gina!" in answer, answer
    finally:
        driver.quit()
        api("POST", "/api/users/gina/projects/site/deactivate", admin)
    print("browser: admins kept out of users' apps - no Open link, the hub's refusal; the owner opens the app")


if __name__ == "__main__":
    run(main)
