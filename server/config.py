"""Configuration read once from the environment and validated at start-up.

Every setting is an environment variable; secrets may also be given as ``NAME_FILE`` pointing
at a file (Docker and systemd secrets). A missing or malformed setting raises ``ConfigError``
whose message is one line naming the variable, which the CLI prints before exiting.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from server.consultations.languages import DEFAULT_UI_LANGUAGE, UI_LANGUAGES

# Secrets shorter than this are refused: they would be guessable offline from a session cookie.
MIN_SECRET_BYTES = 32
# Connections held at once, in all: below the open-file limit, which Casa also needs for the
# database pool, logs and static files (the effective cap is the lower of the two).
MAX_CONNECTIONS = 10_000
# Connections held at once from one address: a centre's NAT with a few dozen browsers stays far
# below it; one attacker cannot take the whole pool. Trusted proxies are exempt.
MAX_CONNECTIONS_PER_ADDRESS = 256
# A request head must be complete this long after the connection opened or the previous
# response ended (idle keep-alive connections close after it too): slowloris trickles forever.
HEADER_TIMEOUT_S = 15.0
# A request body (at most 1 MiB) must arrive within this: 1 MiB at 40 kB/s on a poor 3G link.
BODY_TIMEOUT_S = 30.0
# Appointment reminders: the day before and an hour before (CASA_REMINDERS="24h,1h"; empty: none).
REMINDERS = (timedelta(hours=24), timedelta(hours=1))
# A reminder further ahead than this is not a reminder.
MAX_REMINDER = timedelta(days=14)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and never echoes its value."""


@dataclass(frozen=True)
class Config:
    secret_key: str
    data_dir: Path
    database_url: str | None = None
    owner_database_url: str | None = None
    demo: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    public_origin: str | None = None
    log_level: str = "INFO"
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    turn_secret: str | None = None
    turn_urls: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()
    keyring_file: Path | None = None
    smtp_url: str | None = None
    sms_url: str | None = None
    sms_token: str | None = field(default=None, repr=False)
    sms_sender_id: str | None = None
    sms_timeout_s: float = 10.0
    metrics_token: str | None = None
    join_open_minutes_before: int = 15
    join_close_minutes_after: int = 30
    reminders: tuple[timedelta, ...] = REMINDERS  # longest first
    default_language: str = "it"
    max_connections: int = MAX_CONNECTIONS
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"CASA_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("CASA_TLS_CERT and CASA_TLS_KEY must be set together")
        if self.default_language not in UI_LANGUAGES:
            choices = ", ".join(UI_LANGUAGES)
            raise ConfigError(f"CASA_DEFAULT_LANGUAGE must be one of {choices}")
        if not 1 <= self.port <= 65535:
            raise ConfigError("CASA_PORT must be between 1 and 65535")

    @property
    def https(self) -> bool:
        return self.tls_cert is not None or (self.public_origin or "").startswith("https://")

    @property
    def keyring_path(self) -> Path:
        return self.keyring_file or self.data_dir / "keyring.json"


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """Read NAME, or the contents of the file named by NAME_FILE (trailing newline dropped)."""
    if env.get(name):
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE cannot be read: {exc.strerror}") from None
    return None


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, default: N, lo: N, hi: N,
            parse: Callable[[str], N], what: str) -> N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {_shown(lo)} and {_shown(hi)}")
    return value


def _shown(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return _number(env, name, default, lo, hi, int, "a whole number")


def _seconds(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _number(env, name, default, lo, hi, float, "a number of seconds")


def _urls(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(u.strip() for u in env.get(name, "").split(",") if u.strip())
    for u in items:
        if not u.startswith(schemes):
            raise ConfigError(f"{name} entries must start with one of {', '.join(schemes)}")
    return items


def _reminders(env: Mapping[str, str]) -> tuple[timedelta, ...]:
    """``CASA_REMINDERS``: offsets before an appointment such as ``24h,1h`` or ``2d,30m``;
    set and empty: no reminders."""
    raw = env.get("CASA_REMINDERS")
    if raw is None:
        return REMINDERS
    units = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
    out = set()
    for item in (i.strip().lower() for i in raw.split(",")):
        if not item:
            continue
        number, unit = item[:-1], item[-1:]
        if (unit not in units or not (number.isascii() and number.isdigit())
                or not 0 < int(number) <= 99_999):
            raise ConfigError("CASA_REMINDERS must be offsets before the appointment such as "
                              "24h,1h (m, h or d), or empty for none")
        offset = int(number) * units[unit]
        if offset > MAX_REMINDER:
            raise ConfigError("CASA_REMINDERS offsets must be at most 14d")
        out.add(offset)
    return tuple(sorted(out, reverse=True))


def _proxies(env: Mapping[str, str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    out = []
    for item in env.get("CASA_TRUSTED_PROXIES", "").split(","):
        if item.strip():
            try:
                out.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ConfigError("CASA_TRUSTED_PROXIES must be a comma-separated list of IP "
                                  "addresses or networks") from None
    return tuple(out)


def load_config(env: Mapping[str, str] | None = None, *, demo: bool = False) -> Config:
    """Build a Config from the environment. In demo mode a missing secret is generated once
    and kept in the data directory, so demo sessions survive restarts; outside demo mode
    nothing secret has a default."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("CASA_DATA_DIR") or "./var").resolve()
    secret_key = _secret(env, "CASA_SECRET_KEY")
    if secret_key is None:
        if not demo:
            raise ConfigError("CASA_SECRET_KEY is not set (or CASA_SECRET_KEY_FILE)")
        secret_key = _demo_secret(data_dir)
    cert = env.get("CASA_TLS_CERT")
    key = env.get("CASA_TLS_KEY")
    for name, value in (("CASA_TLS_CERT", cert), ("CASA_TLS_KEY", key)):
        if value and not Path(value).is_file():
            raise ConfigError(f"{name} does not name a readable file")
    origin = env.get("CASA_PUBLIC_ORIGIN") or None
    if origin and not origin.startswith(("http://", "https://")):
        raise ConfigError("CASA_PUBLIC_ORIGIN must start with http:// or https://")
    level = env.get("CASA_LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("CASA_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR")
    db_url = _secret(env, "DATABASE_URL")
    if db_url and not db_url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("DATABASE_URL must start with postgresql://")
    owner_url = _secret(env, "CASA_OWNER_DATABASE_URL")
    if owner_url and not owner_url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("CASA_OWNER_DATABASE_URL must start with postgresql://")
    if owner_url and not db_url:
        raise ConfigError("CASA_OWNER_DATABASE_URL needs DATABASE_URL (the serving role)")
    keyring = env.get("CASA_KEYRING_FILE")
    smtp = _secret(env, "CASA_SMTP_URL")
    if smtp and not smtp.startswith(("smtp://", "smtps://")):
        raise ConfigError("CASA_SMTP_URL must look like smtp://user:password@host:587?from=ADDR")
    sms_url = env.get("CASA_SMS_URL") or None
    if sms_url and not sms_url.startswith(("https://", "http://")):
        raise ConfigError("CASA_SMS_URL must start with https://")
    sms_token = _secret(env, "CASA_SMS_TOKEN")
    if sms_url and not sms_token:
        raise ConfigError("CASA_SMS_URL needs CASA_SMS_TOKEN_FILE (the gateway's token)")
    return Config(
        secret_key=secret_key,
        data_dir=data_dir,
        database_url=db_url,
        owner_database_url=owner_url,
        demo=demo,
        host=env.get("CASA_HOST", "127.0.0.1"),
        port=_int(env, "CASA_PORT", 8080, 1, 65535),
        tls_cert=Path(cert) if cert else None,
        tls_key=Path(key) if key else None,
        trusted_proxies=_proxies(env),
        public_origin=origin.rstrip("/") if origin else None,
        log_level=level,
        session_idle_minutes=_int(env, "CASA_SESSION_IDLE_MINUTES", 30, 1, 24 * 60),
        session_absolute_hours=_int(env, "CASA_SESSION_ABSOLUTE_HOURS", 12, 1, 24 * 7),
        turn_secret=_secret(env, "CASA_TURN_SECRET"),
        turn_urls=_urls(env, "CASA_TURN_URLS", ("turn:", "turns:")),
        stun_urls=_urls(env, "CASA_STUN_URLS", ("stun:", "stuns:")),
        keyring_file=Path(keyring) if keyring else None,
        smtp_url=smtp,
        sms_url=sms_url,
        sms_token=sms_token,
        sms_sender_id=env.get("CASA_SMS_FROM") or None,
        sms_timeout_s=_seconds(env, "CASA_SMS_TIMEOUT_SECONDS", 10.0, 0.5, 120),
        metrics_token=_secret(env, "CASA_METRICS_TOKEN"),
        join_open_minutes_before=_int(env, "CASA_JOIN_OPEN_MINUTES_BEFORE", 15, 0, 240),
        join_close_minutes_after=_int(env, "CASA_JOIN_CLOSE_MINUTES_AFTER", 30, 0, 240),
        reminders=_reminders(env),
        default_language=env.get("CASA_DEFAULT_LANGUAGE", DEFAULT_UI_LANGUAGE),
        max_connections=_int(env, "CASA_MAX_CONNECTIONS", MAX_CONNECTIONS, 1, 1_000_000),
        max_connections_per_address=_int(env, "CASA_MAX_CONNECTIONS_PER_ADDRESS",
                                         MAX_CONNECTIONS_PER_ADDRESS, 1, 1_000_000),
        header_timeout_s=_seconds(env, "CASA_HEADER_TIMEOUT_SECONDS", HEADER_TIMEOUT_S,
                                  0.1, 3600),
        body_timeout_s=_seconds(env, "CASA_BODY_TIMEOUT_SECONDS", BODY_TIMEOUT_S, 0.1, 3600),
        extra={k: v for k, v in env.items() if k.startswith("CASA_X_")},
    )


def _demo_secret(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "demo-secret-key"
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value
