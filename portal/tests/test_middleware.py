"""The plain-HTTP side serves public pages only; the rest goes to HTTPS."""

from __future__ import annotations

import dataclasses

import pytest
from django.conf import settings
from django.test import Client, override_settings

from portal.tests.access_helpers import HttpsClient, finish_setup

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def node_is_set_up(db):
    return finish_setup(node_name="riverside")


def test_public_home_answers_over_http_with_the_node_name_and_admin_link():
    response = Client().get("/", headers={"host": "10.0.0.1:8080"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "riverside" in text
    assert "https://10.0.0.1:8443/" in text
    assert "Log out" not in text


@pytest.mark.parametrize(
    "path",
    [
        "/static/portal/portal.css",
        "/i18n/setlang/",
        "/api/v1/node",
        "/captive/",
        "/.well-known/captive-portal",
    ],
)
def test_public_prefixes_are_not_redirected(path):
    response = Client().get(path)
    assert response.status_code != 302 or not response["Location"].startswith(
        "https://"
    )


@pytest.mark.parametrize("path", ["/login/", "/setup/", "/jobs/", "/status/refresh/"])
def test_other_paths_over_http_redirect_to_the_same_path_on_https(path):
    response = Client().get(path + "?next=%2F", headers={"host": "node.mesh:8080"})
    assert response.status_code == 302
    assert response["Location"] == f"https://node.mesh:8443{path}?next=%2F"


def test_post_over_http_is_not_processed_but_redirected():
    response = Client().post("/login/", {"username": "operator", "password": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://")


def test_default_https_port_is_left_out_of_the_address():
    portal = dataclasses.replace(settings.PORTAL, https_port=443)
    with override_settings(PORTAL=portal):
        response = Client().get("/login/", headers={"host": "Node.Mesh"})
    assert response["Location"] == "https://node.mesh/login/"


def test_ipv6_host_is_kept_in_brackets():
    response = Client().get("/login/", headers={"host": "[fd00::1]:8080"})
    assert response["Location"] == "https://[fd00::1]:8443/login/"


@pytest.mark.parametrize(
    "host",
    [
        "evil.com/phish",
        "a" * 300,
        "bad host",
        "[not-ipv6]",
        "x.com:port",
        "-lead.example",
        "ex@mple.com",
        "[::1]junk",
    ],
)
def test_absurd_hosts_are_refused_not_redirected(host):
    response = Client().get("/login/", headers={"host": host})
    assert response.status_code == 400
    assert "Location" not in response


def test_apps_can_add_public_prefixes():
    with override_settings(PUBLIC_PATH_PREFIXES=["/library/"]):
        response = Client().get("/library/book")
    assert response.status_code == 404  # not redirected: no page there yet


def test_root_over_https_is_the_dashboard_not_the_public_home():
    response = HttpsClient().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_nginx_scheme_header_marks_the_request_secure():
    response = Client().get("/login/", headers={"x-forwarded-proto": "https"})
    assert response.status_code == 200
    response = Client().get("/login/", headers={"x-forwarded-proto": "http"})
    assert response.status_code == 302


def test_public_home_is_served_before_setup_too(db):
    from portal.models import NodeSettings

    NodeSettings.objects.all().delete()
    response = Client().get("/")
    assert response.status_code == 200
