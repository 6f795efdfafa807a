"""Casa as docker-compose.yml runs it, from Debian's packages, on 127.0.0.1: PostgreSQL
(password authentication over TCP), ``casa migrate`` as the owner, two ``casa serve`` as the
least-privilege serving role, coturn, and nginx in front terminating TLS with round robin.

Every setting comes from docker-compose.yml, the Dockerfile and deploy/nginx.conf: their
``${VARIABLES}`` are filled from ``variables()`` and only the replacements listed here
(``ENV_REPLACEMENTS``, ``NGINX_REPLACEMENTS``, ``COTURN_TEST_ONLY``) tell the test's processes
from the containers'; tests/test_compose.py checks that nothing else differs.

Ports: each process is given one picked by binding port 0, and started again with a new one if
another process took it first (two test processes start topologies at once under xdist).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from server.tls import ensure_self_signed
from tests.processes import stop

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"

# Bounds on a busy two-core machine: PostgreSQL's initdb and start, Casa's start (migrations
# checked, the static copy built), nginx and coturn in milliseconds.
START_S = 60.0
PORT_TRIES = 5
# coturn's relay range in the test: apart from tests/coturn.py's (49201-49260).
TEST_RELAY_PORTS = (49300, 49399)

# What the test's processes run instead of the containers' `casa`: this checkout's.
CASA = [sys.executable, "-m", "server.cli"]

# How the containers' addresses and paths become the test's (applied to every environment
# value, in this order, after the ${VARIABLES}); `{name}` is filled per process.
ENV_REPLACEMENTS = (
    ("@db:5432/", "@127.0.0.1:{pg_port}/"),
    (":3478", ":{turn_port}"),
    ("/run/secrets/casa_keyring", "{keyring}"),
    ("/app/var", "{data_dir}"),
    # The proxy's address on the compose network is 127.0.0.1 here.
    ("172.28.0.10", "127.0.0.1/32"),
)
# The Dockerfile's ENV (listen on every interface, port 8080) becomes 127.0.0.1 and a port.
DOCKERFILE_ENV_REPLACED = {"CASA_HOST": "127.0.0.1", "CASA_PORT": "{port}"}
# coturn on loopback: relaying to loopback peers is what the test needs and production denies.
COTURN_TEST_ONLY = ("--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers",
                    "--no-tls", "--no-dtls", "--log-file=stdout")
COTURN_DROPPED = ("--denied-peer-ip=127.0.0.0-127.255.255.255",)


def variables(secret_key: str) -> dict[str, str]:
    """The values of docker-compose.yml's ${VARIABLES} (an operator's .env file)."""
    return {
        "POSTGRES_PASSWORD": "owner-" + secret_key[:16],
        "CASA_DB_PASSWORD": "serving-" + secret_key[:16],
        "CASA_SECRET_KEY": secret_key,
        "CASA_PUBLIC_ORIGIN": "https://127.0.0.1:{proxy_port}",
        "CASA_METRICS_TOKEN": "metrics-" + secret_key[:24],
        "CASA_TURN_SECRET": "turn-" + secret_key[:24],
        "TURN_EXTERNAL_IP": "127.0.0.1",
        "TURN_REALM": "casa.test",
    }


VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}"
                  r"|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Compose's variable syntax: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default},
    ${NAME:?error}, ${NAME?error}."""
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = values.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if empty else str(value)
        if op in ("?", ":?") and empty:
            raise KeyError(f"{name}: {arg}")
        return value or ""

    return VARIABLE.sub(one, text)


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def dockerfile() -> tuple[dict[str, str], list[str]]:
    """The image's ENV and CMD."""
    env: dict[str, str] = {}
    cmd: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENV "):
            for item in line[4:].split():
                key, _, value = item.partition("=")
                env[key] = value
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
    return env, cmd


def service_env(service: str, values: Mapping[str, str], fill: Mapping[str, str]) -> dict[str, str]:
    """A compose service's environment (with the image's ENV under it), as the test runs it."""
    image_env, _ = dockerfile()
    declared = load_compose()["services"][service].get("environment", {})
    out: dict[str, str] = {}
    if load_compose()["services"][service].get("build"):
        out.update({k: DOCKERFILE_ENV_REPLACED.get(k, v).format(**fill)
                    for k, v in image_env.items()})
    for key, raw in declared.items():
        value = interpolate(str(raw), values)
        for old, new in ENV_REPLACEMENTS:
            value = value.replace(old, new.format(**fill))
        out[key] = value
    return out


def service_command(service: str, values: Mapping[str, str]) -> list[str]:
    svc = load_compose()["services"][service]
    command = svc.get("command") or dockerfile()[1]
    return [interpolate(str(c), values) for c in command]


def coturn_args(values: Mapping[str, str], port: int) -> list[str]:
    """compose's coturn command, on loopback (see COTURN_TEST_ONLY and COTURN_DROPPED)."""
    out = []
    for arg in service_command("coturn", values):
        if arg in COTURN_DROPPED:
            continue
        if arg.startswith("--listening-port="):
            arg = f"--listening-port={port}"
        elif arg.startswith("--min-port="):
            arg = f"--min-port={TEST_RELAY_PORTS[0]}"
        elif arg.startswith("--max-port="):
            arg = f"--max-port={TEST_RELAY_PORTS[1]}"
        out.append(arg)
    return ["turnserver", *out, *COTURN_TEST_ONLY]


def nginx_conf(port: int, upstreams: list[int], cert: Path, key: Path, work: Path) -> str:
    """deploy/nginx.conf with the test's addresses and paths (NGINX_REPLACEMENTS)."""
    text = NGINX_CONF.read_text()
    for old, new in nginx_replacements(port, upstreams, cert, key, work):
        assert old in text, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


def nginx_replacements(port: int, upstreams: list[int], cert: Path, key: Path,
                       work: Path) -> list[tuple[str, str]]:
    servers = "\n        ".join(f"server 127.0.0.1:{p} max_fails=0;"
                               for p in upstreams)
    return [
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("server casa:8080 max_fails=0;", servers),
        ("/run/secrets/tls_cert", str(cert)),
        ("/run/secrets/tls_key", str(key)),
        ("/var/run/nginx.pid", str(work / "nginx.pid")),
        ("/var/log/nginx/", f"{work}/logs/"),
        ("/var/cache/nginx/", f"{work}/cache/"),
    ]


def port_from_zero(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise AssertionError("Debian's postgresql is not installed (.ci/run installs it)")
    return Path(found[-1]).parent


class PortTaken(Exception):
    pass


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str,
          taken: tuple[str, ...]) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            if any(t in text for t in taken):
                raise PortTaken(what)
            raise AssertionError(f"{what} stopped at start:\n{text[-3000:]}")
        time.sleep(0.05)
    stop(proc, 5)
    raise AssertionError(f"{what} did not start within {START_S:.0f} s:\n"
                         + (log.read_text(errors="replace")[-3000:] if log.exists() else ""))


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def with_port(start: Callable[[int], Any], kind: int = socket.SOCK_STREAM) -> Any:
    for _ in range(PORT_TRIES):
        try:
            return start(port_from_zero(kind))
        except PortTaken:
            continue
    raise AssertionError(f"no free port after {PORT_TRIES} tries")


@dataclass
class Casa:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def instance_id(self) -> str | None:
        """The signalling instance id of the process running now (the log's last start)."""
        found = None
        for line in self.lines():
            if line.get("msg") == "signalling instance started":
                found = str(line["instance_id"])
        return found


@dataclass
class Topology:
    work: Path
    values: dict[str, str]
    pg_port: int = 0
    turn_port: int = 0
    proxy_port: int = 0
    keyring: Path = Path()
    instances: list[Casa] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None
    stack: ExitStack = field(default_factory=ExitStack)

    # -- addresses -------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.proxy_port}"

    @property
    def owner_url(self) -> str:
        env = service_env("migrate", self.values, self.fill("migrate"))
        return env["CASA_OWNER_DATABASE_URL"]

    @property
    def serving_url(self) -> str:
        return self.instances[0].env["DATABASE_URL"]

    @property
    def access_log(self) -> Path:
        return self.work / "nginx" / "logs" / "access.log"

    def fill(self, name: str, port: int = 0, pg_port: int = 0) -> dict[str, str]:
        return {"pg_port": str(pg_port or self.pg_port), "turn_port": str(self.turn_port),
                "keyring": str(self.keyring), "data_dir": str(self.work / name),
                # A one-off command listens nowhere: the image's port stands.
                "port": str(port or 8080), "proxy_port": str(self.proxy_port)}

    def cli_env(self, service: str, name: str, port: int = 0,
                pg_port: int = 0) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CASA_", "DATABASE_"))}
        env.update(service_env(service, self.values, self.fill(name, port, pg_port)))
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
        (self.work / name).mkdir(exist_ok=True)
        return env

    def run_cli(self, service: str, *args: str, stdin: str | None = None,
                pg_port: int = 0) -> str:
        """A one-off ``casa`` command with a service's environment (`docker compose run`),
        against the topology's database or the server on ``pg_port``."""
        done = subprocess.run([*CASA, *args], env=self.cli_env(service, "cli", pg_port=pg_port),
                              cwd=ROOT,
                              input=stdin, capture_output=True, text=True, timeout=START_S)
        assert done.returncode == 0, f"casa {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    # -- processes -------------------------------------------------------------------------
    def db_env(self) -> dict[str, str]:
        return {k: interpolate(str(v), self.values)
                for k, v in load_compose()["services"]["db"]["environment"].items()}

    def start_postgres(self, name: str = "pg") -> int:
        """compose's db service: the image makes POSTGRES_USER a superuser with
        POSTGRES_PASSWORD and creates POSTGRES_DB; clients authenticate by password over TCP.
        Returns the port (the first server's is the topology's)."""
        env = self.db_env()
        home = self.work / name
        home.mkdir()
        pgdata = home / "data"
        pwfile = home / "password"
        pwfile.write_text(env["POSTGRES_PASSWORD"] + "\n")
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: Debian's postgres user runs it.
            shutil.chown(home, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
            as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
        bindir = pg_bin()
        subprocess.run([str(bindir / "initdb"), "-D", str(pgdata), "-U", env["POSTGRES_USER"],
                        f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                        "--no-locale", "--no-sync"],
                       check=True, capture_output=True, timeout=START_S, **as_user)
        log = home / "postgres.log"

        def start(port: int) -> int:
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [str(bindir / "postgres"), "-D", str(pgdata),
                     "-c", "listen_addresses=127.0.0.1",
                     "-c", f"port={port}", "-c", f"unix_socket_directories={home}",
                     # A test's throwaway data: no need to wait for the disk.
                     "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "max_connections=200"],
                    stdout=out, stderr=subprocess.STDOUT, **as_user)
            self.stack.callback(stop, proc, 20)
            _wait(lambda: "ready to accept connections" in log.read_text(errors="replace"),
                  proc, log, "postgres", ("Address already in use", "could not create any TCP"))
            return port

        port: int = with_port(start)
        if not self.pg_port:
            self.pg_port = port
        self.psql_run(port, "postgres", f'CREATE DATABASE "{env["POSTGRES_DB"]}"')
        return port

    def superuser_url(self, port: int, database: str) -> str:
        env = self.db_env()
        return (f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@127.0.0.1:"
                f"{port}/{database}")

    def psql_run(self, port: int, database: str, statement: str) -> None:
        import asyncio

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.superuser_url(port, database))
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())

    def start_coturn(self) -> None:
        log = self.work / "coturn.log"

        def start(port: int) -> subprocess.Popen[bytes]:
            with open(log, "wb") as out:
                proc = subprocess.Popen(coturn_args(self.values, port), stdout=out,
                                        stderr=subprocess.STDOUT)
            self.stack.callback(stop, proc, 5)
            _wait(lambda: _udp_listening(port), proc, log, "turnserver",
                  ("Address already in use", "Cannot bind"))
            self.turn_port = port
            return proc

        with_port(start, socket.SOCK_DGRAM)

    def start_casa(self, name: str) -> Casa:
        log = self.work / f"{name}.log"
        service = "casa"

        def start(port: int) -> Casa:
            env = self.cli_env(service, name, port)
            with open(log, "ab") as out:
                proc = subprocess.Popen([*CASA, *service_command(service, self.values)[1:]],
                                        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            self.stack.callback(stop, proc, 10)
            _wait(lambda: "Casa is serving" in log.read_text(errors="replace"), proc, log,
                  name, ("address already in use",))
            return Casa(name, port, log, proc, env)

        casa: Casa = with_port(start)
        return casa

    def start_nginx(self) -> None:
        work = self.work / "nginx"
        (work / "cache").mkdir(parents=True, exist_ok=True)
        (work / "logs").mkdir(parents=True, exist_ok=True)
        cert, key = ensure_self_signed(self.work / "tls", "127.0.0.1")
        conf = work / "nginx.conf"
        log = work / "logs" / "error.log"

        def start(port: int) -> subprocess.Popen[bytes]:
            conf.write_text(nginx_conf(port, [c.port for c in self.instances], cert, key, work))
            log.write_text("")
            proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work), "-e", str(log),
                                     "-g", "daemon off;"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.stack.callback(stop, proc, 5)
            _wait(lambda: _connectable(port), proc, log, "nginx", ("Address already in use",))
            return proc

        # The origin patients' links name is the proxy's: the port must be known before the
        # instances start, so nginx's is chosen first and kept (only nginx retries it).
        self.nginx = start(self.proxy_port)

    def kill(self, casa: Casa) -> None:
        casa.proc.kill()
        casa.proc.wait(10)

    def restart(self, casa: Casa) -> Casa:
        """The killed instance back on its own port (nginx lists it)."""
        env = casa.env
        with open(casa.log, "ab") as out:
            proc = subprocess.Popen([*CASA, *service_command("casa", self.values)[1:]], cwd=ROOT,
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
        self.stack.callback(stop, proc, 10)
        before = casa.log.read_text(errors="replace").count("Casa is serving")
        _wait(lambda: casa.log.read_text(errors="replace").count("Casa is serving") > before,
              proc, casa.log, casa.name, ())
        casa.proc = proc
        return casa

    def close(self) -> None:
        self.stack.close()
        shutil.rmtree(self.work, ignore_errors=True)


def _udp_listening(port: int) -> bool:
    needle = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == needle for line in f.readlines()[1:])


def start(secret_key: str, instances: int = 2) -> Topology:
    """Everything, in compose's order: db, coturn, migrate (and the keyring), casa x N, proxy.
    On failure what started is stopped."""
    work = Path(tempfile.mkdtemp(prefix="casa-topology-"))
    os.chmod(work, 0o755)
    topo = Topology(work, {})
    try:
        # nginx's port is part of CASA_PUBLIC_ORIGIN: reserved by binding 0; if another process
        # takes it before nginx binds, the whole topology fails loudly rather than half-works.
        topo.proxy_port = port_from_zero()
        topo.values = {k: v.format(proxy_port=topo.proxy_port)
                       for k, v in variables(secret_key).items()}
        topo.keyring = work / "secrets" / "keyring.json"
        topo.keyring.parent.mkdir()
        topo.start_postgres()
        topo.start_coturn()
        topo.run_cli("migrate", *service_command("migrate", topo.values)[1:])
        keys_env = topo.cli_env("casa", "keys")
        done = subprocess.run([*CASA, "keys", "init"], env=keys_env, cwd=ROOT,
                              capture_output=True, text=True, timeout=START_S)
        assert done.returncode == 0, done.stderr
        for n in range(instances):
            topo.instances.append(topo.start_casa(f"casa-{n + 1}"))
        topo.start_nginx()
    except BaseException:
        topo.close()
        raise
    return topo


def nginx_lines(topo: Topology) -> Iterator[dict[str, Any]]:
    for line in topo.access_log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            yield json.loads(line)
