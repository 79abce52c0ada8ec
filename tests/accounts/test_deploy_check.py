"""`manage.py check --deploy` under production settings: no warning but the ones the README keeps."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Kept on purpose, each with its reason in the README ("Deployment checks").
KEPT_OVER_HTTPS = {"security.W021"}
# `make run`: plain HTTP on localhost, so no secure cookies, redirect or HSTS.
KEPT_OVER_HTTP = {"security.W004", "security.W008", "security.W012", "security.W016"}


def _check_deploy(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY_FILE")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=REPO,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "clinic_ai.settings",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECRET_KEY_FILE": "/nonexistent/secret_key",
            "DEBUG": "false",
            **env,
        },
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    return result.returncode, set(re.findall(r"\((\w+\.[WE]\d+)\)", output)), output


def test_production_settings_over_https_pass_the_deploy_check_but_for_the_documented_warning():
    code, found, output = _check_deploy(SECURE_SSL="true")
    assert code == 0, output
    assert found == KEPT_OVER_HTTPS, output


def test_an_https_site_url_turns_the_https_settings_on_by_itself():
    code, found, output = _check_deploy(SITE_URL="https://clinic-ai.example.org")
    assert (code, found) == (0, KEPT_OVER_HTTPS), output


def test_plain_http_keeps_only_the_documented_https_warnings():
    code, found, output = _check_deploy(SECURE_SSL="false")
    assert (code, found) == (0, KEPT_OVER_HTTP), output


@pytest.mark.parametrize("warning", sorted(KEPT_OVER_HTTPS | KEPT_OVER_HTTP))
def test_every_kept_warning_is_explained_in_the_readme(warning):
    assert warning.split(".")[1] in (REPO / "README.md").read_text()
