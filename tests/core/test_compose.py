"""docker/compose.yaml: no default database password, migrations and pipeline_resume before serving.

`docker compose config` is not on CI's machine, so the file is read as YAML and its ${...} are
resolved the way compose resolves them (`:?` required, `:-` default).
"""

import re
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"
VARIABLE = re.compile(r"\$\{(\w+)(?:(:\?|:-)([^}]*))?\}")


class Missing(Exception):
    pass


def _resolve(node, env):
    if isinstance(node, dict):
        return {key: _resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def one(match):
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == ":?":
            raise Missing(f"{name}: {rest}")
        return rest or ""

    return VARIABLE.sub(one, node)


@pytest.fixture
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_the_database_password_has_no_default(compose):
    text = COMPOSE.read_text()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", text)
    assert len(uses) == 2 and all(use.startswith("${POSTGRES_PASSWORD:?") for use in uses)
    with pytest.raises(Missing, match="POSTGRES_PASSWORD"):
        _resolve(compose, {"SECRET_KEY": "k"})
    with pytest.raises(Missing, match="SECRET_KEY"):
        _resolve(compose, {"POSTGRES_PASSWORD": "p"})


def test_with_the_secrets_set_web_and_database_share_the_password(compose):
    resolved = _resolve(compose, {"SECRET_KEY": "k", "POSTGRES_PASSWORD": "s3cret-pw"})
    services = resolved["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret-pw"
    for name in ("web", "worker-cpu", "worker-gpu"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"] == "postgres://clinic:s3cret-pw@postgres:5432/clinic_ai"
        assert environment["SECRET_KEY"] == "k"


def test_web_migrates_and_resumes_the_pipeline_before_serving_with_gunicorn(compose):
    command = compose["services"]["web"]["command"]
    steps = [command.index(step) for step in ("manage.py migrate", "manage.py pipeline_resume", "gunicorn")]
    assert steps == sorted(steps)
    assert "&&" in command  # a failed migration stops the start
    assert "runserver" not in COMPOSE.read_text()
    assert "-Q cpu " in compose["services"]["worker-cpu"]["command"]


def test_the_gpu_worker_reserves_an_nvidia_gpu_and_builds_the_cuda_tensorflow(compose):
    worker = compose["services"]["worker-gpu"]
    assert "-Q gpu --concurrency 1" in worker["command"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert worker["build"]["args"]["TENSORFLOW"].startswith("tensorflow[and-cuda]==")
