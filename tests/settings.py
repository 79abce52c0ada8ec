"""Test settings: the real settings module, fed a test environment.

The environment is set here rather than in a second settings file, so the
tests exercise exactly the code that reads the deployment's variables.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinic_ai")
# Redis database 15 keeps test queues away from a running `make run` on db 0.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
_root = os.environ.setdefault("CLINIC_AI_TEST_ROOT", tempfile.mkdtemp(prefix="clinic_ai_tests_"))
os.environ.setdefault("MEDIA_ROOT", os.path.join(_root, "media"))
os.environ.setdefault("QUARANTINE_ROOT", os.path.join(_root, "quarantine"))

from clinic_ai.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The worker process and the live server share the test database; keep no idle connections
# around, so the database can be dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
