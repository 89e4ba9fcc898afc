"""Browser test of chat in the web UI: two people in two browsers.

Cora and Dave sign in (each in their own Chromium) and open the room `lobby`: each sees the
other come online, Dave sees Cora typing, each message appears live in the other's window,
an edit and a deletion show up on the other side, a message in another room raises its unread
count, scrolling up loads older messages, and a room created on the page opens. Screenshots
of both windows, one at 390 px wide.
"""
from selenium.webdriver.common.by import By

from browser_support import (HUB, PASSWORD, api, assert_console_clean, create_user, css, run, screenshot,
                             ui_browser_login, until)


def messages(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#messages li.message")


def message_with(driver, text):
    return until(driver, f"the message {text!r}",
                 lambda d: next((m for m in messages(d) if text in m.text), None), 15)


def send(driver, text):
    box = css(driver, "#composer input[name=text]")
    box.send_keys(text)
    css(driver, "#composer button[type=submit]").click()
    message_with(driver, text)


def main():
    admin = api("POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})["token"]
    create_user(admin, "cora", "cora-password-1")
    create_user(admin, "dave", "dave-password-1")
    for room in ("lobby", "side", "history"):
        api("POST", "/api/rooms", admin, {"name": room})
    for n in range(60):
        api("POST", "/api/rooms/history/messages", admin, {"text": f"old message {n}"})

    cora = ui_browser_login("cora", "cora-password-1")
    dave = ui_browser_login("dave", "dave-password-1", width=390, height=844)
    try:
        for driver in (cora, dave):
            driver.get(HUB + "/chat/lobby")
            css(driver, "#composer")
        for driver in (cora, dave):
            until(driver, "both online", lambda d: "cora" in d.find_element(By.ID, "online").text
                  and "dave" in d.find_element(By.ID, "online").text)

        css(cora, "#composer input[name=text]").send_keys("typing")
        until(dave, "Cora typing", lambda d: "cora is typing" in d.find_element(By.ID, "typing").text)
        css(cora, "#composer input[name=text]").clear()

        send(cora, "hello from cora")
        message_with(dave, "hello from cora")
        send(dave, "hi cora, dave here")
        message_with(cora, "hi cora, dave here")

        mine = message_with(cora, "hello from cora")
        mine.find_element(By.XPATH, ".//button[normalize-space()='Edit']").click()
        edit = css(cora, "input[aria-label='Edited message']")
        edit.clear()
        edit.send_keys("hello from cora (edited)")
        edit.submit()
        until(dave, "the edit", lambda d: any("hello from cora (edited)" in m.text and "(edited)" in m.text for m in messages(d)))

        message_with(dave, "hi cora, dave here").find_element(By.XPATH, ".//button[normalize-space()='Delete']").click()
        css(dave, "dialog[open] button[value=confirm]").click()
        until(cora, "the deletion", lambda d: any("(deleted)" in m.text for m in messages(d)))

        dave_token = api("POST", "/api/auth/login", body={"username": "dave", "password": "dave-password-1"})["token"]
        api("POST", "/api/rooms/side/messages", dave_token, {"text": "over here"})
        until(cora, "the unread count of side",
              lambda d: d.find_element(By.CSS_SELECTOR, "a[data-room=side] .unread").text == "1")
        screenshot(cora, "ui-chat-cora")
        screenshot(dave, "ui-chat-dave-390px")
        assert_console_clean(cora, "Cora's chat")
        assert_console_clean(dave, "Dave's chat")

        css(cora, "a[data-room=history]").click()
        until(cora, "the newest 50 messages", lambda d: len(messages(d)) == 50)
        cora.execute_script("document.getElementById('messages').scrollTop = 0")
        until(cora, "the older messages", lambda d: len(messages(d)) == 60)
        assert "old message 0" in messages(cora)[0].text

        form = css(cora, "#new-room")
        form.find_element(By.CSS_SELECTOR, "input[name=room]").send_keys("cora-room")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        until(cora, "the new room", lambda d: d.current_url.endswith("/chat/cora-room"))
        css(cora, "a[data-room='cora-room'][aria-current=page]")
        assert_console_clean(cora, "Cora's chat after scrolling and a new room")
        print("browser: chat between two browsers - live messages, typing, presence, edits, unread, history")
    finally:
        cora.quit()
        dave.quit()


if __name__ == "__main__":
    run(main)
