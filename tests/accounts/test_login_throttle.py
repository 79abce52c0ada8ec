"""Failed log-ins are counted per username and client IP; the answer never tells whether an account exists."""

import json
import secrets

import pytest
from django.urls import reverse

from clinic_ai.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


def _ip() -> str:
    # A fresh address per test: the counters live in Redis, shared by every test of the run.
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def _login(client, username, password, ip, url=None):
    return client.post(url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


@pytest.fixture
def user():
    return UserFactory(username=f"doc-{secrets.token_hex(4)}")


def test_the_fifth_failure_pauses_log_in_with_a_clear_message_and_429(client, user, settings):
    ip = _ip()
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        response = _login(client, user.username, "wrong", ip)
        assert response.status_code == 200
        assert "correct username and password" in _errors(response)[0]
    response = _login(client, user.username, "wrong", ip)
    assert response.status_code == 429
    assert "Too many failed log-ins" in _errors(response)[0]
    assert "Too many failed log-ins" in response.content.decode()

    # Even the right password is refused while the pause lasts.
    response = _login(client, user.username, PASSWORD, ip)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_same_user_from_another_address_still_logs_in(client, user, settings):
    ip = _ip()
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        _login(client, user.username, "wrong", ip)
    response = _login(client, user.username, PASSWORD, _ip())
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_an_unknown_username_gets_exactly_the_answers_a_known_one_gets(client, user, settings):
    def answers(username):
        ip = _ip()
        return [
            (r.status_code, _errors(r))
            for r in (_login(client, username, "wrong", ip) for _ in range(settings.LOGIN_THROTTLE_FAILURES + 1))
        ]

    known = answers(user.username)
    unknown = answers(f"nobody-{secrets.token_hex(4)}")
    assert known == unknown
    assert [status for status, _ in known][-2:] == [429, 429]


def test_a_successful_log_in_clears_the_count_for_that_user_and_address(client, user, settings):
    ip = _ip()
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        _login(client, user.username, "wrong", ip)
    assert _login(client, user.username, PASSWORD, ip).status_code == 302
    client.logout()
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        assert _login(client, user.username, "wrong", ip).status_code == 200
    assert _login(client, user.username, PASSWORD, ip).status_code == 302


def test_one_address_trying_many_usernames_is_paused(client, user, settings):
    ip = _ip()
    for i in range(settings.LOGIN_THROTTLE_FAILURES * 4):
        _login(client, f"guess-{i}-{secrets.token_hex(3)}", "wrong", ip)
    response = _login(client, user.username, PASSWORD, ip)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_admin_log_in_page_is_throttled_too(client, settings):
    admin = UserFactory(username=f"site-{secrets.token_hex(4)}", is_staff=True, is_superuser=True)
    ip = _ip()
    url = reverse("admin:login")
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        _login(client, admin.username, "wrong", ip, url=url)
    response = _login(client, admin.username, PASSWORD, ip, url=url)
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_log_ins_are_audited_without_the_password(client, user, settings):
    ip = _ip()
    secret_guess = f"guess-{secrets.token_hex(8)}"
    _login(client, user.username, secret_guess, ip)
    _login(client, "someone-unknown", secret_guess, ip)
    events = list(AuditEvent.objects.filter(action="auth.login_failed", data__ip=ip).order_by("id"))
    assert [(e.object_id, e.data["known_user"]) for e in events] == [(str(user.pk), True), ("", False)]
    stored = json.dumps([[e.object_type, e.object_id, e.data] for e in events])
    assert secret_guess not in stored
    assert "someone-unknown" not in stored


def test_the_failure_that_reaches_the_limit_is_marked_throttled(client, user, settings):
    ip = _ip()
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        _login(client, user.username, "wrong", ip)
    flags = list(
        AuditEvent.objects.filter(action="auth.login_failed", data__ip=ip)
        .order_by("id")
        .values_list("data__throttled", flat=True)
    )
    assert flags == [False] * (settings.LOGIN_THROTTLE_FAILURES - 1) + [True]


@pytest.mark.parametrize(
    "body",
    [
        "username=%ED%A0%80&password=wrong",  # a lone surrogate, as bytes on the wire
        "username=%FF%FE&password=%C0",  # not UTF-8 at all
        "username=" + "x" * 5000 + "&password=wrong",
        "username=a%00b&password=wrong",
        "username=&password=",
        "username=a&username=b&password=wrong",
    ],
)
def test_odd_log_in_bodies_get_the_form_back_not_a_500(client, body):
    response = client.post(
        reverse("login"), data=body, content_type="application/x-www-form-urlencoded", REMOTE_ADDR=_ip()
    )
    assert response.status_code in (200, 429)
    assert response.context["form"].errors


def test_without_redis_log_in_still_works_and_failures_are_still_audited(client, user, settings, caplog):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    ip = _ip()
    response = _login(client, user.username, "wrong", ip)
    assert response.status_code == 200
    assert "correct username and password" in _errors(response)[0]
    assert AuditEvent.objects.filter(action="auth.login_failed", data__ip=ip).count() == 1
    assert "Log-in throttle unavailable (ConnectionError)" in caplog.text
    assert user.username not in caplog.text
    assert _login(client, user.username, PASSWORD, ip).status_code == 302
