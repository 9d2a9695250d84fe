"""The first-run wizard: the one-time secret, throttling, and closing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal import access
from portal.models import NodeSettings, SetupAttempt
from portal.models.node import hash_setup_secret
from portal.tests.access_helpers import HttpsClient

pytestmark = pytest.mark.django_db

SECRET = "ABCDE-FGHJK-LMNPQ-RSTUV"  # noqa: S105
GOOD_ACCOUNT = {
    "username": "operator",
    "password1": "a-long-Pass-phrase-77",
    "password2": "a-long-Pass-phrase-77",
    "node_name": "Library-2",
    "language": "fr",
}


@pytest.fixture
def secret() -> str:
    node = NodeSettings.load()
    node.setup_secret_hash = hash_setup_secret(SECRET)
    node.save()
    return SECRET


@pytest.fixture
def client() -> HttpsClient:
    return HttpsClient()


def _pass_step_one(client: HttpsClient, secret: str) -> None:
    response = client.post(reverse("portal:setup"), {"secret": secret})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:setup_account")


def test_operator_pages_redirect_to_the_wizard_until_setup_is_done(client):
    for path in ("/", "/login/", "/jobs/", "/status/refresh/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == reverse("portal:setup"), path


def test_wizard_shows_the_secret_step(client, secret):
    response = client.get(reverse("portal:setup"))
    assert response.status_code == 200
    assert b'name="secret"' in response.content


def test_wrong_secret_is_refused_and_counted(client, secret):
    response = client.post(reverse("portal:setup"), {"secret": "AAAAA-BBBBB"})
    assert response.status_code == 200
    assert "not this node&#x27;s setup secret" in response.content.decode()
    assert SetupAttempt.objects.count() == 1
    assert "portal_setup_proof" not in client.session


def test_secret_is_accepted_in_any_case_and_with_spaces(client, secret):
    _pass_step_one(client, " abcde fghjk-lmnpq rstuv ")


def test_account_step_cannot_be_reached_without_the_secret(client, secret):
    response = client.get(reverse("portal:setup_account"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:setup")
    response = client.post(reverse("portal:setup_account"), GOOD_ACCOUNT)
    assert response.status_code == 302
    assert not get_user_model().objects.exists()
    assert not NodeSettings.load().setup_done


def test_wizard_cannot_complete_when_no_secret_was_issued(client):
    response = client.post(reverse("portal:setup"), {"secret": SECRET})
    assert response.status_code == 200
    assert not get_user_model().objects.exists()


def test_secret_guesses_are_throttled_per_address(client, secret):
    for _attempt in range(access.SETUP_ATTEMPT_LIMIT):
        response = client.post(reverse("portal:setup"), {"secret": "WRONG-WRONG"})
        assert response.status_code == 200
    # Even the right secret is refused now, from this address only.
    response = client.post(reverse("portal:setup"), {"secret": secret})
    assert response.status_code == 429
    assert "Too many wrong secrets" in response.content.decode()
    other = HttpsClient(REMOTE_ADDR="10.0.0.9")
    response = other.post(reverse("portal:setup"), {"secret": secret})
    assert response.status_code == 302


def test_completing_setup_creates_the_admin_logs_in_and_closes_the_wizard(
    client, secret
):
    _pass_step_one(client, secret)
    response = client.post(reverse("portal:setup_account"), GOOD_ACCOUNT)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:dashboard")
    user = get_user_model().objects.get(username="operator")
    assert user.is_superuser and user.is_staff
    assert user.check_password(GOOD_ACCOUNT["password1"])
    node = NodeSettings.load()
    assert node.setup_done
    assert node.node_name == "library-2"
    assert node.language == "fr"
    assert node.setup_secret_hash == ""
    assert response.cookies["django_language"].value == "fr"
    # Logged in: the dashboard answers instead of the login page.
    assert client.get("/").status_code == 200
    # The wizard is closed for everyone, and the old secret is useless.
    stranger = HttpsClient()
    for path in (reverse("portal:setup"), reverse("portal:setup_account")):
        response = stranger.get(path)
        assert response.status_code == 302
        assert response["Location"] == reverse("portal:login")
    response = stranger.post(reverse("portal:setup"), {"secret": secret})
    assert response.status_code == 302
    assert get_user_model().objects.count() == 1


def test_a_reissued_secret_invalidates_a_half_done_wizard(client, secret):
    _pass_step_one(client, secret)
    node = NodeSettings.load()
    node.setup_secret_hash = hash_setup_secret("ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ")
    node.save()
    response = client.post(reverse("portal:setup_account"), GOOD_ACCOUNT)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:setup")
    assert not get_user_model().objects.exists()


HOSTILE = [
    "",
    "x" * 5000,
    "nœud-été",
    "name;rm -rf /",
    "two\nlines",
    "-leading",
    "trailing-",
    "a" * 64,
    "dot.ted",
    "nul\x00byte",
    "\u202eevil",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_node_names_rerender_with_a_message_and_change_nothing(
    client, secret, bad
):
    _pass_step_one(client, secret)
    response = client.post(
        reverse("portal:setup_account"), {**GOOD_ACCOUNT, "node_name": bad}
    )
    assert response.status_code == 200
    assert 'class="field__errors"' in response.content.decode()
    assert not get_user_model().objects.exists()
    assert not NodeSettings.load().setup_done


@pytest.mark.parametrize(
    "field,bad",
    [
        ("username", ""),
        ("username", "u" * 151),
        ("username", "evil;name"),
        ("username", "new\nline"),
        ("username", "x" * 100_000),
        ("password2", "does-not-match-1"),
        ("language", "xx"),
        ("language", "en\n"),
    ],
)
def test_hostile_account_fields_rerender_and_change_nothing(client, secret, field, bad):
    _pass_step_one(client, secret)
    response = client.post(
        reverse("portal:setup_account"), {**GOOD_ACCOUNT, field: bad}
    )
    assert response.status_code == 200
    assert not get_user_model().objects.exists()


def test_weak_password_is_refused(client, secret):
    _pass_step_one(client, secret)
    data = {**GOOD_ACCOUNT, "password1": "12345678", "password2": "12345678"}
    response = client.post(reverse("portal:setup_account"), data)
    assert response.status_code == 200
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize("bad", ["", "x" * 5000, "a;b", "l\nm", "ünïcödé"])
def test_hostile_secrets_rerender_and_change_nothing(client, secret, bad):
    response = client.post(reverse("portal:setup"), {"secret": bad})
    assert response.status_code == 200
    assert "portal_setup_proof" not in client.session


def test_huge_post_body_is_refused_without_a_server_error(client, secret):
    response = client.post(reverse("portal:setup"), {"secret": "A" * 3_000_000})
    assert response.status_code == 400


def test_error_messages_follow_the_operators_language(client, secret):
    response = client.post(
        reverse("portal:setup"),
        {"secret": ""},
        headers={"accept-language": "fr"},
    )
    assert response.status_code == 200
    assert 'lang="fr"' in response.content.decode()
    assert "Ce champ est obligatoire" in response.content.decode()


def test_old_wrong_guesses_stop_counting_after_the_window(client, secret):
    from datetime import timedelta

    from django.utils import timezone

    old = timezone.now() - access.SETUP_ATTEMPT_WINDOW - timedelta(seconds=1)
    for _attempt in range(access.SETUP_ATTEMPT_LIMIT):
        SetupAttempt.objects.create(address="127.0.0.1", created_at=old)
    _pass_step_one(client, secret)
    assert SetupAttempt.objects.count() == 0
