"""Tests of cosmo.config: the schema, line-numbered errors and environment overrides."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from cosmo.config import (
    ConfigError,
    DigestAlgorithm,
    LogLevel,
    Settings,
    SipTransport,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "cosmo.yaml"
EXAMPLES = REPO / "config" / "examples"

# A valid base that error cases extend; kept small so line numbers are easy to read.
BASE = """\
trunks:
  - name: demo
    outbound: {host: 127.0.0.1}
queues:
  - name: support
"""


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The problems ``text`` is refused with (as file ``c.yaml``)."""
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), source="c.yaml", environ=environ or {})
    return info.value.problems


# --------------------------------------------------------------------------- valid files


def test_demo_config_loads() -> None:
    settings = load_config(DEMO, environ={})
    assert settings.node_name == "cosmo-demo"
    assert settings.data_dir == Path("var")
    assert settings.database_url == "sqlite+aiosqlite:///var/cosmo.db"
    assert settings.log_level is LogLevel.INFO
    assert [(l.transport, l.host, l.port) for l in settings.sip.listen] == [
        (SipTransport.UDP, "127.0.0.1", 5060),
        (SipTransport.TCP, "127.0.0.1", 5060),
    ]
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.api.accepts("demo-admin-token")
    assert not settings.api.accepts("demo-admin-token2")

    trunk = settings.trunk("demo")
    assert trunk is not None
    assert trunk.inbound.allows("127.0.0.1")
    assert not trunk.inbound.allows("127.0.0.2")
    assert trunk.inbound.username is None
    assert settings.numbers["+15550100"].flow == "main"
    assert settings.numbers["+15550100"].queue == "support"
    assert settings.numbers["+15550100"].trunk == "demo"
    assert settings.numbers["+15550101"].flow is None

    agents = {a.extension: a for a in settings.agents}
    assert sorted(agents) == ["1001", "1002", "1003", "1004", "1005"]
    for extension, agent in agents.items():
        assert agent.password.get_secret_value() == f"secret{extension}"
    assert agents["1001"].skills == {"support": 5, "billing": 2}
    assert agents["1002"].skills == {"support": 3}
    assert agents["1003"].skills == {"billing": 5}
    assert agents["1004"].skills == {"sales": 5, "support": 2}
    assert agents["1005"].skills == {"sales": 3, "billing": 3}
    assert [q.name for q in settings.queues] == ["support", "billing", "sales"]
    assert settings.route("5551234") is not None
    assert settings.route("+15551234") is not None
    assert settings.route("4155551234") is None


def test_empty_file_gives_defaults() -> None:
    for text in ("", "# only a comment\n", "{}\n"):
        settings = parse_config(text, environ={})
        assert settings.sip.domain == "cosmo.local"
        assert settings.sip.user_agent == "Cosmo/0.1"
        assert [(l.transport, l.port) for l in settings.sip.listen] == [
            (SipTransport.UDP, 5060),
            (SipTransport.TCP, 5060),
        ]
        assert settings.sip.auth.algorithms == [DigestAlgorithm.SHA_256, DigestAlgorithm.MD5]
        assert (settings.sip.t1, settings.sip.t2, settings.sip.t4) == (0.5, 4.0, 5.0)
        assert (settings.sip.registration.min_expires, settings.sip.registration.max_expires) == (60, 3600)
        assert (settings.rtp.port_min, settings.rtp.port_max) == (20000, 30000)
        assert settings.database_url == "sqlite+aiosqlite:///var/cosmo.db"
        assert settings.trunks == [] and settings.agents == [] and settings.api.tokens == []


def test_examples_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tls.yaml names certificate files relative to the working directory.
    (tmp_path / "var" / "tls").mkdir(parents=True)
    (tmp_path / "var" / "tls" / "cert.pem").write_text("cert")
    (tmp_path / "var" / "tls" / "key.pem").write_text("key")
    monkeypatch.chdir(tmp_path)
    names = sorted(path.name for path in EXAMPLES.glob("*.yaml"))
    assert names == ["postgresql.yaml", "provider-trunk.yaml", "tls.yaml"]
    for name in names:
        load_config(EXAMPLES / name, environ={})
    provider = load_config(EXAMPLES / "provider-trunk.yaml", environ={})
    trunk = provider.trunk("itsp")
    assert trunk is not None and trunk.registration.enabled
    assert trunk.register_credentials is not None
    assert trunk.register_credentials[0] == "4930123456"
    assert provider.route("0049301234567") is not None
    assert provider.route("0049301234567")[1] == "+49301234567"  # type: ignore[index]
    assert trunk.inbound.allows("2001:db8:10::5")


def test_database_url_default_follows_data_dir() -> None:
    settings = parse_config("data_dir: /srv/cosmo\n", environ={})
    assert settings.database_url == "sqlite+aiosqlite:////srv/cosmo/cosmo.db"
    settings = parse_config("database_url: postgresql+asyncpg://u:p@127.0.0.1/c\n", environ={})
    assert settings.database_url == "postgresql+asyncpg://u:p@127.0.0.1/c"


def test_telephone_numbers_stay_text() -> None:
    settings = parse_config(
        BASE
        + textwrap.dedent(
            """\
            numbers:
              +15550100: {queue: support}
              0301234: {queue: support}
            agents:
              - {extension: 1001, name: A, password: 123456}
              - {extension: 0101, name: B, password: pw}
            """
        ),
        environ={},
    )
    assert list(settings.numbers) == ["+15550100", "0301234"]
    assert [a.extension for a in settings.agents] == ["1001", "0101"]
    assert settings.agents[0].password.get_secret_value() == "123456"


def test_secrets_are_not_shown() -> None:
    settings = load_config(DEMO, environ={})
    assert "secret1001" not in repr(settings)
    assert "demo-admin-token" not in repr(settings)


def test_settings_are_immutable() -> None:
    settings = parse_config("", environ={})
    with pytest.raises(ValueError):
        settings.node_name = "other"  # type: ignore[misc]


def test_tls_listener_defaults_and_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("c")
    key.write_text("k")
    settings = parse_config(
        f"sip:\n  listen:\n    - {{transport: tls, cert_file: {cert}, key_file: {key}}}\n", environ={}
    )
    assert settings.sip.listen[0].port == 5061
    assert settings.sip.listen[0].cert_file == cert


# --------------------------------------------------------------------------- errors with lines

ERROR_CASES = [
    pytest.param(
        "sip:\n  listen:\n    - {transport: udp, port: 99999}\n",
        ["c.yaml:3: sip.listen[0].port: Input should be less than or equal to 65535"],
        id="port-range",
    ),
    pytest.param(
        "sip:\n  listen:\n    - {transport: sctp}\n",
        ["c.yaml:3: sip.listen[0].transport: Input should be 'udp', 'tcp', 'tls', 'ws' or 'wss'"],
        id="transport-enum",
    ),
    pytest.param(
        "sip:\n  listen:\n    - transport: tls\n      port: 5061\n",
        [
            "c.yaml:3: sip.listen[0].cert_file: a tls listener needs cert_file",
            "c.yaml:3: sip.listen[0].key_file: a tls listener needs key_file",
        ],
        id="tls-needs-cert",
    ),
    pytest.param(
        "sip:\n  listen:\n    - transport: tls\n      cert_file: /nonexistent/cert.pem\n"
        "      key_file: /nonexistent/key.pem\n",
        [
            "c.yaml:4: sip.listen[0].cert_file: file not found: /nonexistent/cert.pem",
            "c.yaml:5: sip.listen[0].key_file: file not found: /nonexistent/key.pem",
        ],
        id="tls-cert-missing",
    ),
    pytest.param(
        "sip:\n  listen:\n    - {transport: udp, cert_file: x.pem}\n",
        ["c.yaml:3: sip.listen[0].cert_file: cert_file is only used by tls and wss listeners"],
        id="cert-on-udp",
    ),
    pytest.param(
        "sip:\n  listen:\n    - {transport: udp}\n    - {transport: udp, port: 5060}\n",
        ["c.yaml:4: sip.listen[1]: duplicate listener udp 127.0.0.1:5060 (same as listen[0])"],
        id="duplicate-listener",
    ),
    pytest.param(
        "sip:\n  listen: []\n",
        ["c.yaml:2: sip.listen: List should have at least 1 item after validation, not 0"],
        id="no-listener",
    ),
    pytest.param(
        "sip:\n  t1: 5\n  t2: 4\n",
        ["c.yaml:2: sip.t1: t1 (5.0) must not exceed t2 (4.0)"],
        id="t1-gt-t2",
    ),
    pytest.param(
        "sip:\n  registration: {min_expires: 100, max_expires: 50}\n",
        ["c.yaml:2: sip.registration: need min_expires <= default_expires <= max_expires, got 100 / 600 / 50"],
        id="registration-order",
    ),
    pytest.param(
        "sip:\n  auth:\n    algorithms: [MD5, MD5]\n",
        ["c.yaml:3: sip.auth.algorithms: algorithms must not repeat"],
        id="algorithms-repeat",
    ),
    pytest.param(
        "sip:\n  domain: 'bad domain'\n",
        ["c.yaml:2: sip.domain: not a domain name: 'bad domain'"],
        id="domain",
    ),
    pytest.param(
        "rtp:\n  port_min: 20001\n  port_max: 30000\n",
        ["c.yaml:2: rtp.port_min: port_min must be even, got 20001"],
        id="rtp-odd",
    ),
    pytest.param(
        "rtp:\n  port_min: 30000\n  port_max: 20000\n",
        ["c.yaml:3: rtp.port_max: port_max (20000) must be greater than port_min (30000)"],
        id="rtp-order",
    ),
    pytest.param(
        "http:\n  port: web\n",
        ["c.yaml:2: http.port: Input should be a valid integer, unable to parse string as an integer"],
        id="http-port-type",
    ),
    pytest.param(
        "sip:\n  bogus: 1\n",
        ["c.yaml:2: sip.bogus: unknown setting"],
        id="unknown-key",
    ),
    pytest.param(
        "log_level: verbose\n",
        ["c.yaml:1: log_level: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"],
        id="log-level",
    ),
    pytest.param(
        "trunks:\n  - name: a\n  - name: a\n",
        ["c.yaml:3: trunks[1].name: duplicate name 'a' (first at trunks[0])"],
        id="duplicate-trunk",
    ),
    pytest.param(
        "trunks:\n  - inbound: {sources: [127.0.0.1/32]}\n",
        ["c.yaml:2: trunks[0].name: required setting missing"],
        id="trunk-name-missing",
    ),
    pytest.param(
        "trunks:\n  - name: a\n    inbound:\n      sources: [10.0.0.1/8]\n",
        ["c.yaml:4: trunks[0].inbound.sources[0]: value is not a valid IPv4 or IPv6 network"],
        id="bad-cidr",
    ),
    pytest.param(
        "trunks:\n  - name: a\n    inbound: {username: bob}\n",
        ["c.yaml:3: trunks[0].inbound.password: password is needed when username is set"],
        id="username-without-password",
    ),
    pytest.param(
        "trunks:\n  - name: a\n    register: {enabled: true}\n",
        [
            "c.yaml:3: trunks[0].register.enabled: registration needs outbound.host",
            (
                "c.yaml:3: trunks[0].register.enabled: registration needs register.username/password"
                " or outbound.username/password"
            ),
        ],
        id="register-incomplete",
    ),
    pytest.param(
        BASE + "numbers:\n  '+15550100': {queue: sales}\n",
        ["c.yaml:7: numbers['+15550100'].queue: unknown queue 'sales'"],
        id="number-unknown-queue",
    ),
    pytest.param(
        BASE + "numbers:\n  '+15550100': {queue: support, trunk: other}\n",
        ["c.yaml:7: numbers['+15550100'].trunk: unknown trunk 'other'"],
        id="number-unknown-trunk",
    ),
    pytest.param(
        BASE + "numbers:\n  '+15550100': {}\n",
        ["c.yaml:7: numbers['+15550100']: a number needs a queue or a flow"],
        id="number-without-target",
    ),
    pytest.param(
        BASE + "numbers:\n  'call me': {queue: support}\n",
        ["c.yaml:7: numbers['call me'] (key): String should match pattern '^\\+?[0-9A-Za-z*#_.-]+$'"],
        id="number-key",
    ),
    pytest.param(
        BASE + "routes:\n  - {pattern: '^(1', trunk: demo}\n",
        [
            (
                "c.yaml:7: routes[0].pattern: invalid regular expression: "
                "missing ), unterminated subpattern at position 1"
            )
        ],
        id="route-regex",
    ),
    pytest.param(
        BASE + "routes:\n  - {pattern: '^1', trunk: nowhere}\n",
        ["c.yaml:7: routes[0].trunk: unknown trunk 'nowhere'"],
        id="route-unknown-trunk",
    ),
    pytest.param(
        "trunks:\n  - name: in-only\nroutes:\n  - pattern: '^1'\n    trunk: in-only\n",
        ["c.yaml:5: routes[0].trunk: trunk 'in-only' has no outbound.host to send calls to"],
        id="route-trunk-without-outbound",
    ),
    pytest.param(
        "agents:\n  - {extension: '10a', name: A, password: pw}\n",
        ["c.yaml:2: agents[0].extension: extension must be digits, got '10a'"],
        id="extension-digits",
    ),
    pytest.param(
        "agents:\n  - {extension: '1001', name: A, password: pw}\n  - {extension: 1001, name: B, password: pw}\n",
        ["c.yaml:3: agents[1].extension: duplicate extension '1001' (first at agents[0])"],
        id="duplicate-extension",
    ),
    pytest.param(
        "agents:\n  - extension: '1001'\n    name: A\n",
        ["c.yaml:2: agents[0].password: required setting missing"],
        id="password-missing",
    ),
    pytest.param(
        "agents:\n  - extension: '1001'\n    name: A\n    password: pw\n    skills: {support: 11}\n",
        ["c.yaml:5: agents[0].skills.support: Input should be less than or equal to 5"],
        id="skill-range",
    ),
    pytest.param(
        "queues:\n  - name: q\n  - name: q\n",
        ["c.yaml:3: queues[1].name: duplicate name 'q' (first at queues[0])"],
        id="duplicate-queue",
    ),
    pytest.param(
        "queues:\n  - name: q\n    service_level: {percent: 120}\n",
        ["c.yaml:3: queues[0].service_level.percent: Input should be less than or equal to 100"],
        id="service-level",
    ),
    pytest.param(
        "api:\n  tokens: ['has space']\n",
        ["c.yaml:2: api.tokens: API tokens must be non-empty and contain no spaces"],
        id="api-token",
    ),
    pytest.param(
        "- a\n- b\n",
        ["c.yaml:1: the file must be a mapping of settings"],
        id="not-a-mapping",
    ),
    pytest.param(
        "sip:\n  domain: a\n  domain: b\n",
        ["c.yaml:3: duplicate key 'domain'"],
        id="duplicate-key",
    ),
    pytest.param(
        "sip:\n  listen: [\n",
        ["c.yaml:3: YAML syntax error: while parsing a flow node expected the node content, but found '<stream end>'"],
        id="yaml-syntax",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_error_messages(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_every_problem_reported_in_file_order() -> None:
    text = "log_level: loud\nhttp: {port: -1}\nrtp: {port_min: 3}\n"
    assert problems(text) == [
        "c.yaml:1: log_level: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'",
        "c.yaml:2: http.port: Input should be greater than or equal to 0",
        "c.yaml:3: rtp.port_min: Input should be greater than or equal to 1024",
    ]


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("node_name: ok\nhttp:\n  port: 70000\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [f"{path}:3: http.port: Input should be less than or equal to 65535"]
    assert str(path) in str(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [f"{path}: cannot read: No such file or directory"]


# --------------------------------------------------------------------------- env overrides


def test_env_overrides(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("c")
    key.write_text("k")
    text = textwrap.dedent(
        f"""\
        sip:
          listen:
            - {{transport: udp, port: 5060}}
            - {{transport: tcp, port: 5060}}
            - {{transport: tls, port: 5061, cert_file: {cert}, key_file: {key}}}
            - {{transport: ws, port: 5066}}
        """
    )
    settings = parse_config(
        text,
        environ={
            "COSMO_SIP_PORT": "15060",
            "COSMO_HTTP_PORT": "18080",
            "COSMO_DATA_DIR": str(tmp_path / "data"),
            "COSMO_LOG_LEVEL": "debug",
        },
    )
    assert [l.port for l in settings.sip.listen] == [15060, 15060, 15061, 5066]
    assert settings.http.port == 18080
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/cosmo.db"
    assert settings.log_level is LogLevel.DEBUG

    settings = parse_config(text, environ={"COSMO_DATABASE_URL": "postgresql+asyncpg://c@127.0.0.1/c"})
    assert settings.database_url == "postgresql+asyncpg://c@127.0.0.1/c"


def test_env_sip_port_applies_to_default_listeners() -> None:
    settings = parse_config("", environ={"COSMO_SIP_PORT": "0"})
    assert [(l.transport, l.port) for l in settings.sip.listen] == [(SipTransport.UDP, 0), (SipTransport.TCP, 0)]


def test_env_read_from_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSMO_HTTP_PORT", "9090")
    assert load_config(DEMO).http.port == 9090


def test_env_errors_name_the_variable() -> None:
    assert problems("", {"COSMO_SIP_PORT": "sip", "COSMO_HTTP_PORT": "70000"}) == [
        "COSMO_SIP_PORT: not a port number: 'sip'",
        "COSMO_HTTP_PORT: port out of range 0-65535: 70000",
    ]
    assert problems("http: {port: 1}\n", {"COSMO_LOG_LEVEL": "chatty"}) == [
        "COSMO_LOG_LEVEL: log_level: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"
    ]


def test_settings_round_trip_through_python() -> None:
    settings = load_config(DEMO, environ={})
    again = Settings.model_validate(settings.model_dump(by_alias=True))
    assert again == settings


def test_demo_copy_is_independent(tmp_path: Path) -> None:
    # load_config reads relative to the working directory only for data paths;
    # the file itself may live anywhere.
    copy = tmp_path / "cosmo.yaml"
    shutil.copy(DEMO, copy)
    assert load_config(copy, environ={}).node_name == "cosmo-demo"
