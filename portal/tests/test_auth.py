"""Login, logout, throttling, CSRF and cookie flags of the operator side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

from portal.tests.access_helpers import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    HttpsClient,
    finish_setup,
    logged_in_client,
)

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def node_is_set_up(db):
    return finish_setup()


@pytest.mark.parametrize("path", ["/", "/jobs/"])
def test_operator_pages_need_a_login(path):
    response = HttpsClient().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login") + "?next=")


def test_refresh_needs_a_login():
    response = HttpsClient().post(reverse("portal:refresh_status"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_login_with_the_right_password_opens_the_dashboard():
    client = HttpsClient()
    response = client.post(
        reverse("portal:login"),
        {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:dashboard")
    assert client.get("/").status_code == 200


def test_wrong_password_rerenders_with_a_message():
    response = HttpsClient().post(
        reverse("portal:login"), {"username": ADMIN_USERNAME, "password": "nope"}
    )
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


@pytest.mark.parametrize(
    "username,password",
    [
        ("", ""),
        ("x" * 100_000, "y"),
        ("a;b\nc", "p"),
        ("ünï", "\x00"),
        ("a", "b" * 5000),
    ],
)
def test_hostile_login_input_gives_a_message_not_an_error(username, password):
    response = HttpsClient().post(
        reverse("portal:login"), {"username": username, "password": password}
    )
    assert response.status_code in (200, 403, 429)
    assert response.status_code != 500


def test_login_locks_out_after_five_failures_with_a_friendly_page():
    client = HttpsClient()
    for _attempt in range(5):
        client.post(
            reverse("portal:login"), {"username": ADMIN_USERNAME, "password": "x"}
        )
    response = client.post(
        reverse("portal:login"),
        {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many attempts" in text
    assert "15 minutes" in text
    assert 'href="/static/portal/portal.css"' in text
    # Another address is not locked out.
    other = HttpsClient(REMOTE_ADDR="10.1.2.3")
    response = other.post(
        reverse("portal:login"),
        {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert response.status_code == 302


def test_lockout_page_is_translated():
    client = HttpsClient(headers={"accept-language": "es"})
    for _attempt in range(6):
        response = client.post(
            reverse("portal:login"), {"username": ADMIN_USERNAME, "password": "x"}
        )
    assert response.status_code == 429
    assert 'lang="es"' in response.content.decode()


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_lockout_counts_the_client_behind_nginx_not_nginx():
    from django.test import Client

    client = Client(REMOTE_ADDR="")
    headers = {"x-forwarded-proto": "https", "x-real-ip": "10.9.9.9"}
    for _attempt in range(6):
        response = client.post(
            reverse("portal:login"),
            {"username": ADMIN_USERNAME, "password": "x"},
            headers=headers,
        )
    assert response.status_code == 429
    response = client.post(
        reverse("portal:login"),
        {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
        headers={**headers, "x-real-ip": "10.9.9.10"},
    )
    assert response.status_code == 302


def test_logout_needs_post():
    client = logged_in_client()
    assert client.get(reverse("portal:logout")).status_code == 405
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_csrf_is_enforced_on_login_setup_logout_and_refresh():
    client = HttpsClient(enforce_csrf_checks=True)
    response = client.post(
        reverse("portal:login"),
        {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert response.status_code == 403
    logged_in = logged_in_client(enforce_csrf_checks=True)
    assert logged_in.post(reverse("portal:refresh_status")).status_code == 403
    assert logged_in.post(reverse("portal:logout")).status_code == 403
    assert logged_in.post("/i18n/setlang/", {"language": "ar"}).status_code == 403


def test_login_works_with_the_csrf_token_from_the_form():
    client = HttpsClient(enforce_csrf_checks=True)
    page = client.get(reverse("portal:login"))
    token = page.cookies["csrftoken"].value
    response = client.post(
        reverse("portal:login"),
        {
            "username": ADMIN_USERNAME,
            "password": ADMIN_PASSWORD,
            "csrfmiddlewaretoken": token,
        },
        # Over HTTPS Django also checks that the form came from this site.
        headers={"referer": "https://testserver/login/"},
    )
    assert response.status_code == 302


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_session_cookie_is_secure_and_http_only():
    client = HttpsClient()
    response = client.post(
        reverse("portal:login"),
        {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    cookie = response.cookies["sessionid"]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


@pytest.mark.parametrize(
    "module", ["portal.settings.dev", "portal.settings.production"]
)
def test_dev_and_production_settings_mark_cookies_secure(module, tmp_path):
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SESSION_COOKIE_HTTPONLY, list(s.SECURE_PROXY_SSL_HEADER)]))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": module,
        "BYZANTIUM_STATE_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        True,
        True,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
    ]
