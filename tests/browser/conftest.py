"""Debian's Chromium driven by Playwright, against pytest-django's live server."""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def demo(transactional_db):
    """The demo project and users, made before Playwright starts its event loop in this thread:
    ORM calls inside that loop would open a second connection that outlives the test."""
    call_command("demo_setup", stdout=io.StringIO())


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        # Every browser test also checks the Content-Security-Policy: Chromium reports what it
        # refused on the console. (Predicates for wait_for_function are written as functions:
        # a bare expression string is eval'd in the page, which the CSP forbids.)
        refused = []
        page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
        yield page
        browser.close()
        assert refused == [], "CSP violations"


def log_in(page, live_server, username="demo-radiologist", password="clinic-ai-demo"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():  # the session cookie is set before the caller's next goto
        page.click("button[type=submit]")
    assert "/accounts/login/" not in page.url, f"{username} could not log in"


def demo_project_without_ensemble(client):
    """The demo project and users as `manage.py demo_setup` makes them, without the demo ensemble
    (for tests about labels, review or the viewer, not inference) and with OCR off; `client` is
    logged in as demo-radiologist, ready to upload. Call it before Playwright starts."""
    from clinic_ai.accounts.management.commands.demo_setup import DEMO_PROJECT, DEMO_USERS
    from clinic_ai.accounts.models import TaskType, User
    from clinic_ai.accounts.services import membership_set, project_create
    from clinic_ai.deidentification.models import DeidProfile

    project = project_create(
        actor=None, name=DEMO_PROJECT, task_type=TaskType.BINARY, class_names=["normal", "pneumonia"]
    )
    for username, role, _ in DEMO_USERS:
        user = User.objects.create_user(username=username, password="clinic-ai-demo")
        membership_set(actor=None, project=project, user=user, role=role)
    DeidProfile.objects.update_or_create(project=project, defaults={"ocr_enabled": False})
    client.force_login(User.objects.get(username="demo-radiologist"))
    return project
