"""Configuration: a bad setting stops Casa with one line naming it; no secret defaults."""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.config import ConfigError, load_config

GOOD_KEY = "k" * 40


def test_secret_key_is_required_outside_demo(tmp_path):
    with pytest.raises(ConfigError, match="CASA_SECRET_KEY"):
        load_config({"CASA_DATA_DIR": str(tmp_path)})


def test_short_secret_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least 32"):
        load_config({"CASA_SECRET_KEY": "short", "CASA_DATA_DIR": str(tmp_path)})


def test_secret_from_file(tmp_path):
    f = tmp_path / "key"
    f.write_text(GOOD_KEY + "\n")
    cfg = load_config({"CASA_SECRET_KEY_FILE": str(f), "CASA_DATA_DIR": str(tmp_path)})
    assert cfg.secret_key == GOOD_KEY


def test_unreadable_secret_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="CASA_SECRET_KEY_FILE"):
        load_config({"CASA_SECRET_KEY_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("CASA_PORT", "eighty", "CASA_PORT must be a whole number"),
    ("CASA_PORT", "70000", "CASA_PORT must be between"),
    ("CASA_TRUSTED_PROXIES", "10.0.0.1,not-an-ip", "CASA_TRUSTED_PROXIES"),
    ("CASA_TURN_URLS", "http://x", "CASA_TURN_URLS"),
    ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
    ("CASA_OWNER_DATABASE_URL", "mysql://x", "CASA_OWNER_DATABASE_URL"),
    ("CASA_OWNER_DATABASE_URL", "postgresql://owner@db/casa", "needs DATABASE_URL"),
    ("CASA_LOG_LEVEL", "LOUD", "CASA_LOG_LEVEL"),
    ("CASA_TLS_CERT", "/nonexistent.pem", "CASA_TLS_CERT"),
    ("CASA_PUBLIC_ORIGIN", "casa.example", "CASA_PUBLIC_ORIGIN"),
    ("CASA_DEFAULT_LANGUAGE", "de", "CASA_DEFAULT_LANGUAGE"),
    ("CASA_SMTP_URL", "mail.example:25", "CASA_SMTP_URL"),
])
def test_malformed_settings_are_named(tmp_path, name, value, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config({"CASA_SECRET_KEY": GOOD_KEY, "CASA_DATA_DIR": str(tmp_path), name: value})


def test_config_error_never_echoes_the_value(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config({"CASA_SECRET_KEY": GOOD_KEY, "DATABASE_URL": "mysql://user:hunter2@x"})
    assert "hunter2" not in str(info.value)


def test_the_owner_url_may_come_from_a_file(tmp_path):
    secret = tmp_path / "owner-url"
    secret.write_text("postgresql://owner:pw@db/casa\n")
    config = load_config({"CASA_SECRET_KEY": GOOD_KEY, "CASA_DATA_DIR": str(tmp_path),
                          "DATABASE_URL": "postgresql://casa_app:pw@db/casa",
                          "CASA_OWNER_DATABASE_URL_FILE": str(secret)})
    assert config.owner_database_url == "postgresql://owner:pw@db/casa"


def test_demo_generates_and_keeps_a_secret(tmp_path):
    a = load_config({"CASA_DATA_DIR": str(tmp_path)}, demo=True)
    b = load_config({"CASA_DATA_DIR": str(tmp_path)}, demo=True)
    assert a.secret_key == b.secret_key and len(a.secret_key) >= 32
    assert (tmp_path / "demo-secret-key").stat().st_mode & 0o077 == 0


def test_cli_prints_one_clear_line_and_exits_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CASA_DATA_DIR": str(tmp_path), "CASA_PORT": "x"}
    proc = subprocess.run([sys.executable, "-m", "server.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "CASA_SECRET_KEY" in lines[0] or "CASA_PORT" in lines[0]
