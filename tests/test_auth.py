"""Owner log in and log out: the session, CSRF on both forms, no open redirects, rate limit."""

from __future__ import annotations

from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, csrf_token, login


def test_login_page_has_labelled_fields_and_a_csrf_token(client):
    html = client.get("/login").get_data(as_text=True)
    assert csrf_token(html)
    assert '<label for="email">' in html and '<label for="password">' in html
    assert 'autocomplete="current-password"' in html


def test_owner_logs_in_and_lands_on_the_albums(client, owner):
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/albums"
    assert client.get("/albums").status_code == 200


def test_email_is_matched_without_regard_to_case_or_spaces(client, owner):
    response = login(client, email=f"  {OWNER_EMAIL.upper()} ")
    assert response.status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_answer(client, owner):
    wrong = login(client, password="not the password")
    unknown = login(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert "E-mail or password is not correct." in wrong.get_data(as_text=True)
    assert "E-mail or password is not correct." in unknown.get_data(as_text=True)
    assert client.get("/albums").status_code == 302


def test_login_without_csrf_token_is_refused(client, owner):
    client.get("/login")
    response = client.post("/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Bad request" in html and "reload the page" in html and "/static/css/app.css" in html
    assert "CSRFError" not in html and "Traceback" not in html
    assert client.get("/albums").status_code == 302


def test_owner_pages_send_a_visitor_to_login_and_back(client, owner, make_album):
    album_id = make_album(count=1)
    response = client.get(f"/albums/{album_id}/shares")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next=/albums/{album_id}/shares"
    token = csrf_token(client.get(response.headers["Location"]).get_data(as_text=True))
    back = client.post(response.headers["Location"], data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "csrf_token": token})
    assert back.headers["Location"] == f"/albums/{album_id}/shares"


def test_next_never_leads_to_another_site(client, owner):
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        token = csrf_token(client.get("/login").get_data(as_text=True))
        response = client.post(
            "/login", query_string={"next": target}, data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "csrf_token": token}
        )
        assert response.headers["Location"] == "/albums", target


def test_scripts_get_401_json_instead_of_the_login_page(client, owner, make_album):
    album_id = make_album(count=1)
    response = client.get(f"/albums/{album_id}", headers={"Accept": "application/json"})
    assert response.status_code == 401 and response.get_json()["error"] == "login_required"


def test_logout_needs_a_post_with_csrf_and_ends_the_session(client, owner):
    login(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    token = csrf_token(client.get("/albums").get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/albums").status_code == 302


def test_login_attempts_are_rate_limited(client, owner):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    statuses = [
        client.post("/login", data={"email": OWNER_EMAIL, "password": "wrong guess", "csrf_token": token}).status_code
        for _ in range(21)
    ]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429


def test_guesses_at_one_account_are_limited_from_any_address_and_unknown_emails_alike(app, owner):
    from photoshare.auth import create_user

    with app.app_context():
        create_user("other@example.com", OWNER_PASSWORD)
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per hour"

    def attempt(email: str, password: str, address: str) -> int:
        """One log-in from a new browser at `address`."""
        browser = app.test_client()
        token = csrf_token(browser.get("/login").get_data(as_text=True))
        return browser.post("/login", data={"email": email, "password": password, "csrf_token": token},
                            environ_base={"REMOTE_ADDR": address}).status_code

    right = [attempt(OWNER_EMAIL, OWNER_PASSWORD, "10.0.0.1") for _ in range(4)]  # right passwords are given back
    owner_guesses = [attempt(OWNER_EMAIL, "wrong guess", f"10.0.1.{i}") for i in range(4)]
    unknown_guesses = [attempt("nobody@example.com", "wrong guess", f"10.0.2.{i}") for i in range(4)]
    assert right == [302] * 4
    assert owner_guesses == unknown_guesses == [401, 401, 401, 429]  # the limit tells nobody which accounts exist
    assert attempt(f" {OWNER_EMAIL.upper()}", OWNER_PASSWORD, "10.0.3.1") == 429  # same account, however it is typed
    assert attempt("other@example.com", OWNER_PASSWORD, "10.0.3.1") == 302  # other accounts are not affected


def test_too_many_log_ins_get_the_429_page_with_retry_after(client, owner):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    for _ in range(20):
        client.post("/login", data={"email": OWNER_EMAIL, "password": "wrong guess", "csrf_token": token})
    refused = client.post("/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "csrf_token": token})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "Too many attempts" in html and "/static/css/app.css" in html
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and refused.headers["X-RateLimit-Limit"] == "20"
    assert client.get("/albums").status_code == 302


# ---- the Account page: a new password --------------------------------------------------------------------------


def change_password(client, current: str, new: str, confirm: str | None = None):
    token = csrf_token(client.get("/account").get_data(as_text=True))
    return client.post("/account", data={"current_password": current, "new_password": new,
                                         "confirm": new if confirm is None else confirm, "csrf_token": token})


def test_account_page_changes_the_password_given_the_current_one(app, client, owner):
    login(client)
    html = client.get("/albums").get_data(as_text=True)
    assert 'href="/account"' in html
    form = client.get("/account").get_data(as_text=True)
    assert 'autocomplete="current-password"' in form and form.count('autocomplete="new-password"') == 2
    response = change_password(client, OWNER_PASSWORD, "a brand new password")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert "Password changed" in client.get("/account").get_data(as_text=True)  # this browser stays logged in
    assert login(app.test_client()).status_code == 401
    assert login(app.test_client(), password="a brand new password").status_code == 302


def test_account_page_refuses_a_wrong_current_password_or_a_bad_new_one(app, client, owner):
    login(client)
    wrong = change_password(client, "not my password", "a brand new password")
    assert wrong.status_code == 403 and "That is not your current password." in wrong.get_data(as_text=True)
    differ = change_password(client, OWNER_PASSWORD, "a brand new password", confirm="something else")
    assert differ.status_code == 400 and "The two new passwords differ." in differ.get_data(as_text=True)
    short = change_password(client, OWNER_PASSWORD, "short")
    assert short.status_code == 400 and "Use 8 to 128 characters." in short.get_data(as_text=True)
    assert login(app.test_client()).status_code == 302  # still the old password


def test_account_page_needs_a_login_and_csrf(app, client, owner):
    assert client.get("/account").headers["Location"] == "/login?next=/account"
    login(client)
    refused = client.post("/account", data={"current_password": OWNER_PASSWORD, "new_password": "a brand new one",
                                            "confirm": "a brand new one"})
    assert refused.status_code == 400 and login(app.test_client()).status_code == 302
