"""Browser test of the admin page: every user's environments, and stopping one from there.

Erin and Finn each have an active `hello` project. The admin's page lists both environments
with owner and state, the figures and their charts; pressing Stop on Erin's stops it; Finn's
project page offers the admin its app. The admin and projects pages are also shot at 390 px
wide.
"""
from selenium.webdriver.common.by import By

from browser_support import (HUB, PASSWORD, api, assert_console_clean, click, create_user, css, run, screenshot,
                             ui_browser_login, until, wait_for)


def main():
    admin = api("POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
    tokens = {name: create_user(admin, name, f"{name}-password-1") for name in ("erin", "finn")}
    for name, token in tokens.items():
        api("POST", f"/api/users/{name}/projects", token, {"name": "site", "template": "hello"})
        api("POST", f"/api/users/{name}/projects/site/activate", token)
    for name, token in tokens.items():
        wait_for(f"{name}/site active", lambda: api("GET", f"/api/users/{name}/projects/site", token)["state"] == "active")

    driver = ui_browser_login("admin", PASSWORD)
    try:
        driver.get(HUB + "/admin")
        for name in tokens:
            until(driver, f"{name}/site listed as active", lambda d: d.find_element(
                By.CSS_SELECTOR, f"#environments tr[data-project='{name}/site'] .badge").text == "active")
        until(driver, "the charts", lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart svg polyline")) == 2)
        screenshot(driver, "ui-admin-environments")
        assert_console_clean(driver, "the admin page")

        click(driver, "#environments tr[data-project='erin/site'] button")
        until(driver, "erin/site to stop", lambda d: d.find_element(
            By.CSS_SELECTOR, "#environments tr[data-project='erin/site'] .badge").get_attribute("data-state") == "inactive", 40)
        assert api("GET", "/api/users/finn/projects/site", tokens["finn"])["state"] == "active"
        screenshot(driver, "ui-admin-stopped")

        # Finn's project, from the admin page: admins may open users' apps here (the default).
        click(driver, "#environments tr[data-project='finn/site'] a")
        until(driver, "Open app on finn/site", lambda d: any(
            link.is_displayed() and link.text == "Open app" for link in d.find_elements(By.CSS_SELECTOR, ".environment a.button")))
        driver.get(HUB + "/admin")

        driver.set_window_size(390, 844)
        driver.refresh()
        css(driver, "#environments")
        screenshot(driver, "ui-admin-390px")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the admin page is {width} px wide at 390 px"
        driver.get(HUB + "/projects")
        css(driver, "#new-project")
        screenshot(driver, "ui-projects-390px")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the projects page is {width} px wide at 390 px"
        assert_console_clean(driver, "the narrow pages")
        print("browser: admin page - every environment, stop one, figures, 390 px")
    finally:
        driver.quit()
        api("POST", "/api/users/finn/projects/site/deactivate", admin)
        api("POST", "/api/users/erin/projects/site/deactivate", admin)


if __name__ == "__main__":
    run(main)
