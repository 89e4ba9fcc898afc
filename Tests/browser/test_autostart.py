"""Browser test: opening a stopped project through the gateway starts it.

The owner opens /u/admin/web/ of an inactive `hello` project: the stopped page starts the
environment, follows its progress and reloads into the app's JSON. Screenshots of the page
while it starts and of the app go to OUTPUT_DIR.
"""
import json
import os

from browser_support import HUB, OUTPUT, PASSWORD, api, console_errors, run, signed_in_browser, wait_for


def main():
    os.makedirs(OUTPUT, exist_ok=True)
    token = api("POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
    api("POST", "/api/users/admin/projects", token, {"name": "web", "template": "hello"})
    driver = signed_in_browser(token)
    try:
        driver.get(HUB + "/u/admin/web/")
        driver.save_screenshot(os.path.join(OUTPUT, "stopped-page.png"))
        # The page reloads into the app once the environment is active.
        wait_for("the app's answer", lambda: "Hello from Flask bot" in driver.page_source and driver.page_source, 60)
        body = driver.find_element("tag name", "body").text
        assert json.loads(body) == {"message": "Hello from Flask bot of user admin!"}, body
        assert api("GET", "/api/users/admin/projects/web", token)["state"] == "active"
        driver.save_screenshot(os.path.join(OUTPUT, "autostarted-app.png"))
        errors = [e for e in console_errors(driver) if "favicon.ico" not in e["message"]]
        assert not errors, errors
        print("browser: the stopped page started the project and reloaded into the app")
    finally:
        driver.quit()
        api("POST", "/api/users/admin/projects/web/deactivate", token)


if __name__ == "__main__":
    run(main)
