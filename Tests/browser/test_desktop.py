"""Browser test: a desktop project opened through the gateway in a real Chromium.

Run by scripts/browser-tests.sh, which starts the hub and passes HUB_URL, ADMIN_PASSWORD and
OUTPUT_DIR. Signs in (through the API, setting the session cookie in the browser), creates and
activates a `desktop` project, opens /u/admin/desk/ and checks that noVNC connects through the
gateway's WebSocket and draws a desktop that is not blank. Saves a screenshot in OUTPUT_DIR.
"""
import os

from browser_support import HUB, OUTPUT, PASSWORD, api, console_errors, run, signed_in_browser, wait_for

# How many distinct colours the noVNC canvas shows: a blank (or black) screen has one.
CANVAS_COLOURS = """
const canvas = document.querySelector('#noVNC_container canvas');
if (!canvas || canvas.width === 0) return 0;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const seen = new Set();
for (let i = 0; i < data.length && seen.size < 64; i += 4 * 97) seen.add(data[i] << 16 | data[i + 1] << 8 | data[i + 2]);
return seen.size;
"""


def main():
    os.makedirs(OUTPUT, exist_ok=True)
    token = api("POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
    api("POST", "/api/users/admin/projects", token, {"name": "desk", "template": "desktop"})
    api("POST", "/api/users/admin/projects/desk/activate", token)
    wait_for("the desktop to be active", lambda: api("GET", "/api/users/admin/projects/desk", token)["state"] == "active")

    driver = signed_in_browser(token)
    try:
        driver.get(HUB + "/u/admin/desk/")
        wait_for("the redirect to noVNC", lambda: "/u/admin/desk/vnc.html" in driver.current_url, 30)
        assert "path=u/admin/desk/websockify" in driver.current_url, driver.current_url
        # noVNC names the tab after the remote desktop once it is connected.
        wait_for("noVNC to connect", lambda: driver.title not in ("", "noVNC") and "noVNC" in driver.title, 30)
        colours = wait_for("a desktop on the canvas", lambda: max(driver.execute_script(CANVAS_COLOURS), 1) - 1, 30) + 1
        screenshot = os.path.join(OUTPUT, "desktop.png")
        driver.save_screenshot(screenshot)
        errors = console_errors(driver)
        assert not errors, errors
        print(f"browser: desktop connected through the gateway ({driver.title!r}, {colours} colours); screenshot {screenshot}")
    finally:
        driver.quit()
        api("POST", "/api/users/admin/projects/desk/deactivate", token)


if __name__ == "__main__":
    run(main)
