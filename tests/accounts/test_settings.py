import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_settings(**env):
    base = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "UPLOAD_MAX_FILE_SIZE")
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import clinic_ai.settings as s; print(s.UPLOAD_MAX_FILE_SIZE, s.DATABASES['default']['ENGINE'])",
        ],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
    )


def test_settings_load_with_a_secret_key():
    result = _load_settings(SECRET_KEY="x" * 40, UPLOAD_MAX_FILE_SIZE="2G", DATABASE_URL="postgres://u@h/db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(2 * 1024**3), "django.db.backends.postgresql"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECRET_KEY_FILE": "/nonexistent/secret_key"}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "k", "DEBUG": "perhaps"}, "DEBUG must be a boolean"),
        ({"SECRET_KEY": "k", "UPLOAD_MAX_FILE_SIZE": "lots"}, "UPLOAD_MAX_FILE_SIZE must be a size"),
        ({"SECRET_KEY": "k", "DATABASE_URL": "nonsense://x"}, "DATABASE_URL is not a valid database URL"),
        ({"SECRET_KEY": "k", "REDIS_URL": "http://x"}, "REDIS_URL must start with"),
    ],
)
def test_bad_settings_fail_loudly_at_start(env, message):
    result = _load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_secret_key_is_read_from_secret_key_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("k" * 50 + "\n")
    result = subprocess.run(
        [sys.executable, "-c", "import clinic_ai.settings as s; print(len(s.SECRET_KEY))"],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if k != "SECRET_KEY"}, "SECRET_KEY_FILE": str(key_file)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "50"
