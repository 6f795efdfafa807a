"""docker-compose.yml and the topology test (tests/topology.py) say the same thing: the same
services, the same environment keys and values (but for the addresses and paths the test
replaces, listed there), the same commands, and nginx's configuration from one file."""

from __future__ import annotations

from pathlib import Path

from tests import topology

FILL = {"pg_port": "5432", "turn_port": "3478", "keyring": "/run/secrets/casa_keyring",
        "data_dir": "/app/var", "port": "8080", "proxy_port": "443"}
# How the topology test runs each compose service.
RUNS = {"db": "postgres", "migrate": "casa migrate", "casa": "casa serve", "coturn": "turnserver",
        "proxy": "nginx"}


def values() -> dict[str, str]:
    return {k: v.format(proxy_port=443) for k, v in topology.variables("k" * 40).items()}


def test_the_topology_runs_every_compose_service_and_nothing_else() -> None:
    assert set(topology.load_compose()["services"]) == set(RUNS)


def test_every_variable_compose_needs_is_given_by_the_topology() -> None:
    text = topology.COMPOSE.read_text()
    needed = {m.group(1) or m.group(4) for m in topology.VARIABLE.finditer(text)
              if m.group(0) != "$$"}
    assert needed == set(values())


def test_casa_services_environment_is_compose_s_with_only_the_listed_replacements() -> None:
    compose = topology.load_compose()["services"]
    for service in ("migrate", "casa"):
        env = topology.service_env(service, values(), FILL)
        declared = compose[service]["environment"]
        image_env, _ = topology.dockerfile()
        assert set(env) == set(declared) | set(image_env)
        for key, raw in declared.items():
            expected = topology.interpolate(str(raw), values())
            # Only the listed replacements differ; undone here, the value is compose's.
            got = env[key]
            for old, new in reversed(topology.ENV_REPLACEMENTS):
                got = got.replace(new.format(**FILL), old)
            assert got == expected, key
    casa = topology.service_env("casa", values(), FILL)
    # Serving instances never hold the owner's address.
    assert "CASA_OWNER_DATABASE_URL" not in casa
    assert casa["DATABASE_URL"].startswith("postgresql://casa_app:")
    assert "CASA_OWNER_DATABASE_URL" in topology.service_env("migrate", values(), FILL)


def test_commands_are_compose_s() -> None:
    assert topology.service_command("casa", values()) == ["casa", "serve"]
    assert topology.service_command("migrate", values()) == ["casa", "migrate"]
    assert topology.dockerfile()[1] == ["casa", "serve"]
    compose = topology.service_command("coturn", values())
    test = topology.coturn_args(values(), 3478)
    assert test[0] == "turnserver"
    # The test's arguments are compose's, in order, with the loopback changes only.
    kept = [a for a in compose if a not in topology.COTURN_DROPPED]
    assert [a.split("=")[0] for a in test[1:len(kept) + 1]] == [a.split("=")[0] for a in kept]
    assert set(test[1:]) - set(compose) <= {*topology.COTURN_TEST_ONLY, "--listening-port=3478",
                                        f"--min-port={topology.TEST_RELAY_PORTS[0]}",
                                        f"--max-port={topology.TEST_RELAY_PORTS[1]}"}
    assert set(compose) - set(test[1:]) <= {*topology.COTURN_DROPPED, "--min-port=49160",
                                        "--max-port=49999"}
    # Same shared secret as Casa's.
    assert f"--static-auth-secret={values()['CASA_TURN_SECRET']}" in test


def test_nginx_runs_compose_s_configuration_file() -> None:
    proxy = topology.load_compose()["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    conf = topology.nginx_conf(8443, [8001, 8002], Path("/c.pem"), Path("/k.pem"), Path("/w"))
    original = topology.NGINX_CONF.read_text()
    for old, new in reversed(topology.nginx_replacements(8443, [8001, 8002], Path("/c.pem"),
                                                         Path("/k.pem"), Path("/w"))):
        conf = conf.replace(new, old)
    assert conf == original
    # The proxy's fixed address is the one Casa trusts.
    casa = topology.load_compose()["services"]["casa"]["environment"]
    assert proxy["networks"]["casa"]["ipv4_address"] == casa["CASA_TRUSTED_PROXIES"]
