"""Browser test of the web UI's main path, as a new user walks it.

The admin signs in through the login page (reached by the hub's redirect from `/`), creates
a user on the admin page and signs out. That user signs in, creates a `hello` project from
the template picker, starts it and watches the badge turn active (live, from the progress
events), opens the app in a new tab and reads its JSON; then creates an `agent` project,
starts it and sees the agent's reply arrive in pieces. Last, the session is revoked behind
the page's back: the next request lands on the login page, which leads back. Every page is
screenshotted and checked for console errors.
"""
import json

from selenium.webdriver.common.by import By

from browser_support import (HUB, PASSWORD, api, assert_console_clean, browser, css, run, screenshot, ui_login,
                             until)

USER, USER_PASSWORD = "uma", "uma-password-1"


def project_card(driver, name):
    return css(driver, f"li.project[data-project='{name}']")


def state_of(driver, name):
    return project_card(driver, name).find_element(By.CSS_SELECTOR, ".badge").get_attribute("data-state")


def create_project(driver, name, template):
    form = css(driver, "#new-project")
    form.find_element(By.CSS_SELECTOR, "input[name=name]").send_keys(name)
    form.find_element(By.CSS_SELECTOR, f"input[name=template][value='{template}']").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return project_card(driver, name)


def start_and_wait_active(driver, name):
    """The badge goes from inactive to active on the same page, without a reload (a `hello`
    start can be quicker than one look at the page, so `starting` may never be seen)."""
    card = project_card(driver, name)
    assert state_of(driver, name) == "inactive", f"{name} is {state_of(driver, name)} before its start"
    marker = driver.execute_script("window.__envhubSamePage = true; return true;")
    card.find_element(By.XPATH, ".//button[normalize-space()='Start']").click()
    until(driver, f"{name} to become active", lambda _: state_of(driver, name) == "active", 90)
    assert marker and driver.execute_script("return window.__envhubSamePage === true;"), "the page reloaded"


def admin_creates_user(driver):
    driver.get(HUB + "/")
    until(driver, "the redirect to the login page", lambda d: "/login?next=" in d.current_url)
    css(driver, "input[name=username]")
    screenshot(driver, "ui-login")
    assert_console_clean(driver, "the login page")
    ui_login(driver, "admin", PASSWORD)
    css(driver, "a[href='/admin']").click()
    form = css(driver, "#new-user")
    form.find_element(By.CSS_SELECTOR, "input[name=username]").send_keys(USER)
    form.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(USER_PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    css(driver, f"#users tr[data-user='{USER}']")
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(driver, "ui-admin")
    assert_console_clean(driver, "the admin page")
    css(driver, "#logout").click()
    until(driver, "the login page after signing out", lambda d: d.current_url.endswith("/login"))


def hello_project(driver):
    css(driver, "#new-project")
    screenshot(driver, "ui-projects-empty")
    create_project(driver, "hello-web", "hello")
    start_and_wait_active(driver, "hello-web")
    screenshot(driver, "ui-projects-active")
    assert_console_clean(driver, "the projects page")
    project_card(driver, "hello-web").find_element(By.LINK_TEXT, "Open app").click()
    until(driver, "the app's tab", lambda d: len(d.window_handles) == 2)
    driver.switch_to.window(driver.window_handles[1])
    until(driver, "the app's JSON", lambda d: "Hello from Flask bot" in d.page_source)
    body = json.loads(driver.find_element(By.TAG_NAME, "body").text)
    assert body == {"message": f"Hello from Flask bot of user {USER}!"}, body
    driver.close()
    driver.switch_to.window(driver.window_handles[0])


def agent_project(driver):
    create_project(driver, "helper", "agent")
    start_and_wait_active(driver, "helper")
    project_card(driver, "helper").find_element(By.LINK_TEXT, "helper").click()
    textarea = css(driver, "textarea[name=message]")
    until(driver, "the Send button", lambda d: d.find_element(By.CSS_SELECTOR, ".agent-form button[type=submit]").is_enabled())
    # Record every length the reply's text takes on the way, to see it arrive in pieces.
    driver.execute_script("""
        window.replyLengths = [];
        new MutationObserver(() => {
          const reply = document.querySelector('.conversation .entry.assistant:last-child .content');
          if (reply) window.replyLengths.push(reply.textContent.length);
        }).observe(document.querySelector('.conversation'), {childList: true, subtree: true, characterData: true});
    """)
    textarea.send_keys("help")
    css(driver, ".agent-form button[type=submit]").click()
    reply = until(driver, "the complete reply",
                  lambda d: d.find_elements(By.CSS_SELECTOR, ".entry.assistant[data-status='complete']"), 60)[0]
    lengths = [n for n in driver.execute_script("return window.replyLengths") if n > 0]
    assert len(set(lengths)) >= 3, f"the reply did not arrive in pieces: {lengths}"
    assert int(reply.get_attribute("data-tokens")) >= 3, reply.get_attribute("outerHTML")
    assert len(reply.text) > 20, reply.text
    screenshot(driver, "ui-agent")
    assert_console_clean(driver, "the agent page")


def session_expiry(driver):
    """The session is revoked elsewhere: the next request goes to the login page and back."""
    token = driver.get_cookie("envhub_session")["value"]
    api("POST", "/api/auth/logout", token)
    css(driver, "a[href='/profile']").click()
    until(driver, "the login page", lambda d: "/login?next=%2Fprofile" in d.current_url)
    assert_console_clean(driver, "the expiry redirect", allowed=("401",))
    ui_login(driver, USER, USER_PASSWORD, expect_path="/profile")
    css(driver, "#profile input[name=displayName]").send_keys("Uma Tester")
    css(driver, "#profile button[type=submit]").click()
    until(driver, "the new display name in the header", lambda d: d.find_element(By.ID, "whoami").text == "Uma Tester")
    screenshot(driver, "ui-profile")
    assert_console_clean(driver, "the profile page")


def main():
    driver = browser()
    try:
        admin_creates_user(driver)
        ui_login(driver, USER, USER_PASSWORD)
        hello_project(driver)
        agent_project(driver)
        session_expiry(driver)
        print("browser: web UI - sign-in, admin, projects, app, agent stream, session expiry")
    finally:
        driver.quit()
        token = api("POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
        for project in api("GET", f"/api/users/{USER}/projects", token)["projects"]:
            api("POST", f"/api/users/{USER}/projects/{project['name']}/deactivate", token)


if __name__ == "__main__":
    run(main)
