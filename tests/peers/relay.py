# SPDX-License-Identifier: GPL-3.0-or-later
"""SMTP relay test peer: real listeners (STARTTLS, implicit TLS, plain) that record every accepted message.

Runs with only the standard library and aiosmtpd (1.4.3 from Debian 12's python3-aiosmtpd in the
peers container, 1.4.6 in the venv):

    python3 relay.py --config CONFIG.json

CONFIG.json:

    {
      "hostname": "relay.smtp-relay.test",
      "records_dir": "/state/records",
      "ready_file": "/state/ready.json",          (optional: {name: port} once all listeners are up)
      "users": {"relayuser": "password"},
      "reject_senders": ["blocked@example.test", "@blocked.test"],
      "reject_recipients": ["nobody@example.test", "@nowhere.test"],
      "listeners": [
        {"name": "submission", "host": "0.0.0.0", "port": 587, "tls": "starttls",
         "cert": "relay.pem", "key": "relay.key", "auth": "optional",
         "auth_mechanisms": ["PLAIN", "LOGIN"], "auth_require_tls": true}
      ]
    }

Listener keys: `tls` is starttls | implicit | none; `auth` is required | optional | none
(default optional); `auth_mechanisms` defaults to PLAIN and LOGIN; `auth_require_tls` (default true)
keeps AUTH hidden and refused until STARTTLS, as real relays do; `open_clients` (addresses or networks), where
given, are the only clients admitted without AUTH (as Google's relay or a Microsoft 365 connector admit by IP).
A user may have a list of passwords (Amazon SES: one SMTP password per region). `port` 0 picks a free port (see
ready_file). Each accepted message becomes RECORDS_DIR/<id>.json, written atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import ipaddress
import json
import logging
import os
import secrets
import signal
import ssl
import sys
import tempfile
import warnings
from dataclasses import dataclass

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, syntax

TLS_MODES = ("starttls", "implicit", "none")
AUTH_MODES = ("required", "optional", "none")
MECHANISMS = ("PLAIN", "LOGIN")

# aiosmtpd warns whenever auth_required is set without auth_require_tls; on an implicit TLS
# listener that combination is the correct one (the whole connection is encrypted).
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
QUIET_NOTICES = ("login_data is deprecated", "auth_required == True but auth_require_tls == False")

NULL_SENDERS = ("<>", "")


class ConfigError(Exception):
    """The relay configuration is unusable."""


def _networks(where: str, values) -> list[str]:
    try:
        return [str(ipaddress.ip_network(value)) for value in values]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: open_clients {values!r}: {e}") from e


@dataclass(frozen=True)
class Listener:
    name: str
    host: str
    port: int
    tls: str
    cert: str | None
    key: str | None
    auth: str
    auth_mechanisms: tuple[str, ...]
    auth_require_tls: bool
    # Like a campus relay: senders outside these domains are refused (empty: any sender).
    allowed_sender_domains: tuple[str, ...] = ()
    # Like Google's relay or a Microsoft 365 connector: clients admitted by IP without AUTH (empty: any client).
    open_clients: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: dict, index: int) -> Listener:
        where = f"listeners[{index}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be an object, got {raw!r}")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{where} has unknown keys {sorted(unknown)}")
        name = raw.get("name") or f"listener{index}"
        where = f"listener {name!r}"
        port = raw.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(f"{where}: port {port!r} is not an integer 0-65535")
        tls = raw.get("tls", "none")
        if tls not in TLS_MODES:
            raise ConfigError(f"{where}: tls {tls!r} is not one of {', '.join(TLS_MODES)}")
        auth = raw.get("auth", "optional")
        if auth not in AUTH_MODES:
            raise ConfigError(f"{where}: auth {auth!r} is not one of {', '.join(AUTH_MODES)}")
        mechanisms = tuple(m.upper() for m in raw.get("auth_mechanisms", MECHANISMS))
        bad = [m for m in mechanisms if m not in MECHANISMS]
        if bad:
            raise ConfigError(f"{where}: auth_mechanisms {bad} not supported; use {', '.join(MECHANISMS)}")
        require_tls = raw.get("auth_require_tls", True)
        if not isinstance(require_tls, bool):
            raise ConfigError(f"{where}: auth_require_tls {require_tls!r} must be true or false")
        if tls != "none" and not (raw.get("cert") and raw.get("key")):
            raise ConfigError(f"{where}: tls {tls!r} needs both cert and key")
        if auth == "required" and tls == "none" and require_tls:
            raise ConfigError(f"{where}: auth required without TLS can never succeed unless auth_require_tls is false")
        if auth != "none" and not mechanisms:
            raise ConfigError(f"{where}: auth {auth!r} needs at least one of auth_mechanisms")
        return cls(
            name=name,
            host=raw.get("host", "127.0.0.1"),
            port=port,
            tls=tls,
            cert=raw.get("cert"),
            key=raw.get("key"),
            auth=auth,
            auth_mechanisms=mechanisms,
            auth_require_tls=require_tls,
            allowed_sender_domains=tuple(d.lower() for d in raw.get("allowed_sender_domains", ())),
            open_clients=tuple(_networks(where, raw.get("open_clients", ()))),
        )

    def admits_by_ip(self, peer: str) -> bool:
        if not self.open_clients:
            return True
        address = ipaddress.ip_address(peer.partition("%")[0])
        return any(address in ipaddress.ip_network(net) for net in self.open_clients)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls == "none":
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"listener {self.name!r}: cannot load cert {self.cert!r} / key {self.key!r}: {e}") from e
        return context


@dataclass(frozen=True)
class Config:
    hostname: str
    records_dir: str
    ready_file: str | None
    users: dict[str, str | list[str]]
    reject_senders: tuple[str, ...]
    reject_recipients: tuple[str, ...]
    listeners: tuple[Listener, ...]

    @classmethod
    def load(cls, path: str) -> Config:
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read config {path!r}: {e}") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path!r} must hold a JSON object")
        listeners = raw.get("listeners")
        if not isinstance(listeners, list) or not listeners:
            raise ConfigError("listeners must be a non-empty list")
        parsed = tuple(Listener.from_dict(item, i) for i, item in enumerate(listeners))
        names = [listener.name for listener in parsed]
        if len(set(names)) != len(names):
            raise ConfigError(f"listener names must be unique, got {names}")
        users = raw.get("users", {})
        if not isinstance(users, dict) or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(p, str) for p in v)) for v in users.values()
        ):
            raise ConfigError("users must map user names to password strings (or lists of them)")
        if not raw.get("records_dir"):
            raise ConfigError("records_dir is required")
        return cls(
            hostname=raw.get("hostname", "relay.smtp-relay.test"),
            records_dir=raw["records_dir"],
            ready_file=raw.get("ready_file"),
            users=users,
            reject_senders=tuple(s.lower() for s in raw.get("reject_senders", [])),
            reject_recipients=tuple(s.lower() for s in raw.get("reject_recipients", [])),
            listeners=parsed,
        )


def matches(address: str, patterns: tuple[str, ...]) -> bool:
    """True when the address equals an entry, or its domain matches an `@domain` entry."""
    address = address.lower()
    domain = "@" + address.rpartition("@")[2]
    return address in patterns or domain in patterns


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def say(*parts: object) -> None:
    print(now(), *parts, flush=True)


def write_atomically(directory: str, name: str, payload: dict) -> None:
    # Readers glob *.json: the temporary name must never match until the rename.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        os.unlink(tmp)
        raise


def tls_details(server: RelaySMTP) -> tuple[bool, str | None]:
    ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
    if ssl_object is None:
        return False, None
    return True, ssl_object.version()


class RelaySMTP(SMTP):
    """One SMTP session on one listener; knows its listener so the shared handler can tell them apart."""

    def __init__(self, handler: RelayHandler, listener: Listener, **kwargs) -> None:
        self.listener = listener
        super().__init__(handler, **kwargs)

    def log(self, event: str, **fields: object) -> None:
        peer = self.session.peer if self.session and self.session.peer else ("?", 0)
        say(
            f"listener={self.listener.name} peer={peer[0]}:{peer[1]} event={event}",
            *(f"{k}={v}" for k, v in fields.items()),
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd calls this a second time after STARTTLS, with self.transport already set.
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.event_handler.sessions.add(self)
            encrypted, version = tls_details(self)
            self.log("connect", tls=version if encrypted else "no")

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.sessions.discard(self)
        self.log("disconnect", **({"error": type(error).__name__} if error else {}))
        super().connection_lost(error)

    async def handle_exception(self, error: Exception) -> str:
        # A failed STARTTLS handshake (client refused our certificate) arrives here, its cause chained.
        cause = error.__cause__ or error
        self.log("error", error=f"{type(error).__name__}: {type(cause).__name__}: {cause}")
        return "451 4.3.0 Error: test relay failed to handle the command"

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        if self.listener.auth == "none":
            await self.push("503 5.5.1 Error: authentication not enabled")
            return
        await super().smtp_AUTH(arg)


class RelayHandler:
    """aiosmtpd hooks shared by all listeners: policy, authentication and recording."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sessions: set[RelaySMTP] = set()

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        user = auth_data.login.decode("utf-8", "replace")
        expected = self.config.users.get(user)
        accepted = [expected] if isinstance(expected, str) else expected or []
        ok = any(secrets.compare_digest(one.encode(), auth_data.password) for one in accepted)
        server.log("auth", mechanism=mechanism, user=user, result="ok" if ok else "failed")
        # Only the user name is kept in the session: nothing downstream ever sees the password.
        return AuthResult(success=True, auth_data=user) if ok else AuthResult(success=False, handled=False)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # The 5-argument hook must set host_name itself.
        session.host_name = hostname
        if server.listener.auth == "none":
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        server.log("ehlo", helo=hostname)
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        server.log("helo", helo=hostname)
        return MISSING

    def handle_STARTTLS(self, server, session, envelope) -> bool:
        # aiosmtpd calls this hook without awaiting it: it must stay a plain function.
        ssl_object = (session.ssl or {}).get("ssl_object")
        server.log("starttls", version=ssl_object.version() if ssl_object else "?")
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if matches(address, self.config.reject_senders):
            server.log("mail_rejected", mail_from=address)
            return f"553 5.7.1 <{address}>: Sender address rejected: not allowed by test relay"
        if not session.authenticated and not server.listener.admits_by_ip(session.peer[0]):
            server.log("mail_rejected", mail_from=address, reason="client not admitted by IP")
            return f"530 5.7.0 Authentication required: client {session.peer[0]} is not admitted by IP"
        allowed = server.listener.allowed_sender_domains
        # The null sender (bounces, delivery notices) has no domain to approve: real relays accept it.
        if allowed and address not in NULL_SENDERS and address.rpartition("@")[2].lower() not in allowed:
            server.log("mail_rejected", mail_from=address, reason="domain not approved")
            return f"553 5.7.1 <{address}>: Sender address rejected: domain not approved for this relay"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        server.log("mail", mail_from=address, auth_user=session.auth_data if session.authenticated else None)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if matches(address, self.config.reject_recipients):
            server.log("rcpt_rejected", rcpt_to=address)
            return f"550 5.1.1 <{address}>: Recipient address rejected: unknown in test relay"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        server.log("rcpt", rcpt_to=address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        queue_id = secrets.token_hex(6).upper()
        encrypted, version = tls_details(server)
        sockname = server.transport.get_extra_info("sockname")
        record = {
            "id": queue_id,
            "listener": server.listener.name,
            "port": sockname[1] if sockname else server.listener.port,
            "peer": session.peer[0],
            "tls": encrypted,
            "tls_version": version,
            "auth_user": session.auth_data if session.authenticated else None,
            "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "helo": session.host_name,
            "received_at": now(),
            "data": envelope.original_content.decode("utf-8", "replace"),
        }
        write_atomically(self.config.records_dir, f"{queue_id}.json", record)
        server.log("queued", id=queue_id, rcpts=len(envelope.rcpt_tos), size=len(envelope.original_content))
        return f"250 2.0.0 Ok: queued as {queue_id}"


async def serve(config: Config) -> None:
    loop = asyncio.get_running_loop()
    handler = RelayHandler(config)
    os.makedirs(config.records_dir, exist_ok=True)
    servers = []
    ports = {}
    for listener in config.listeners:
        context = listener.ssl_context()
        kwargs = {
            "hostname": config.hostname,
            "ident": "smtp.relay test peer",
            "enable_SMTPUTF8": True,
            # STARTTLS only exists where aiosmtpd gets a tls_context; implicit TLS is done by the
            # server socket instead, and aiosmtpd (which only knows STARTTLS) must then be told not to
            # wait for TLS before AUTH, or it would refuse AUTH with 538 on an encrypted connection.
            "tls_context": context if listener.tls == "starttls" else None,
            "require_starttls": False,
            "auth_required": listener.auth == "required",
            "auth_require_tls": listener.auth_require_tls and listener.tls != "implicit",
            "auth_exclude_mechanism": [m for m in MECHANISMS if m not in listener.auth_mechanisms],
            "authenticator": handler.authenticate,
            "loop": loop,
        }

        factory = functools.partial(RelaySMTP, handler, listener, **kwargs)

        server = await loop.create_server(
            factory,
            host=listener.host,
            port=listener.port,
            ssl=context if listener.tls == "implicit" else None,
            reuse_address=True,
        )
        servers.append(server)
        ports[listener.name] = server.sockets[0].getsockname()[1]
        say(
            f"listener={listener.name} event=listening host={listener.host} port={ports[listener.name]}",
            f"tls={listener.tls} auth={listener.auth} mechanisms={','.join(listener.auth_mechanisms)}",
            f"auth_require_tls={listener.auth_require_tls}",
        )
    if config.ready_file:
        write_atomically(
            os.path.dirname(os.path.abspath(config.ready_file)), os.path.basename(config.ready_file), ports
        )

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    say("event=stopping")
    for server in servers:
        server.close()
    for session in list(handler.sessions):
        if session.transport is not None:
            session.transport.close()
    for server in servers:
        await server.wait_closed()
    say("event=stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON configuration file")
    args = parser.parse_args(argv)
    # aiosmtpd logs each command line (AUTH data included) at DEBUG: keep its logger at WARNING, minus
    # two notices that are expected here (1.4.6 logs one per AUTH; implicit TLS triggers the other).
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("mail.log").addFilter(lambda r: not any(n in r.getMessage() for n in QUIET_NOTICES))
    try:
        config = Config.load(args.config)
        asyncio.run(serve(config))
    except ConfigError as e:
        print(f"relay.py: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"relay.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
