# SPDX-License-Identifier: GPL-3.0-or-later
"""The providers of the lab: one more relay (its own container and address) answering to the providers' names.

    python -m tests.peers.providers up | down      (``python -m tests.peers.lab up`` starts it too)

Managed containers resolve through podman's DNS (aardvark) and Postfix looks relays up in DNS only, so each
provider host name (smtp.sendgrid.net, email-smtp.REGION.amazonaws.com, ...) is a network alias of the
container ``smtprelay-providers``: a lab host's Postfix finds it exactly as it finds the real provider (the lab
NSD serves the same names, for hosts started with ``--dns`` and for explicit nameservers). One
certificate from the lab CA names them all (Postfix sends no SNI: one address cannot choose a certificate per
name). Every preset of the role is STARTTLS on 587, except the Microsoft 365 connector on 25; 587 and 25 of the
main peers container are taken, hence the second address.

The relay plays each provider's AUTH rules through its user table: SendGrid's user ``apikey`` with an API key,
the SES SMTP user (an access key id) with the password derived from its secret key for each region, a Mailgun
domain login, a Microsoft 365 mailbox, a Gmail app password, an optional Google relay user. Without AUTH only
``open_clients`` are admitted (Google's relay and the connector admit by IP): the address tests give their host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import string
import sys

from tests.peers import lab

CONTAINER = "smtprelay-providers"
IP4, IP6 = "10.89.100.250", "fd00:89:100::fa"
# The address a test host takes to be admitted by IP (Google relay, Microsoft 365 connector): far from the
# addresses podman hands out in order, so that no other lab host holds it.
CLIENT_IP4, CLIENT_IP6 = "10.89.100.249", "fd00:89:100::f9"
SES_REGIONS = ("eu-west-1", "us-east-1")
OFFICE365_TENANT = "contoso-lab"
# The names the role's presets point at (plugins/module_utils/_relayhost/providers.py), written out again here:
# the lab is the providers' side and must not take the names from the code under test.
NAMES = {
    "ses": [f"email-smtp.{region}.amazonaws.com" for region in SES_REGIONS],
    "sendgrid": ["smtp.sendgrid.net"],
    "mailgun": ["smtp.mailgun.org", "smtp.eu.mailgun.org"],
    "office365": ["smtp.office365.com"],
    "office365_connector": [f"{OFFICE365_TENANT}.mail.protection.outlook.com"],
    "google_relay": ["smtp-relay.gmail.com"],
    "gmail": ["smtp.gmail.com"],
}
ALL_NAMES = [name for names in NAMES.values() for name in names]
# name -> (port, tls, auth): submission for every AUTH preset (and Google's relay), the connector on 25.
LISTENERS = {"provider_submission": (587, "starttls", "optional"), "provider_connector": (25, "starttls", "none")}
STATE = lab.STATE / "providers"


def zones() -> dict[str, str]:
    """The lab NSD's zones for the providers' names (each name its own zone: nothing else of theirs is served)."""
    return {name: f"@ IN A {IP4}\n@ IN AAAA {IP6}\n" for name in ALL_NAMES}


def ses_smtp_password(secret_access_key: str, region: str) -> str:
    """What AWS documents: the SES SMTP password (version 4) of a secret access key, for one region."""
    key = ("AWS4" + secret_access_key).encode()
    for message in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        key = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"\x04" + key).decode()


def _token(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _unused in range(length))


def credentials() -> dict:
    """Fresh credentials of each provider, as its console would hand them out."""
    ses_secret = _token(string.ascii_letters + string.digits + "+/", 40)
    return {
        "ses": {
            "username": "AKIA" + _token(string.ascii_uppercase + string.digits, 16),
            "secret_access_key": ses_secret,
            "passwords": {region: ses_smtp_password(ses_secret, region) for region in SES_REGIONS},
        },
        "sendgrid": {"username": "apikey", "password": "SG." + _token(string.ascii_letters + string.digits, 43)},
        "mailgun": {"username": "postmaster@mg.campus.smtp-relay.test", "password": secrets.token_hex(16)},
        "office365": {"username": "alerts@campus.smtp-relay.test", "password": secrets.token_urlsafe(12)},
        "gmail": {"username": "someone@gmail.com", "password": _token(string.ascii_lowercase, 16)},
        "google_relay": {"username": "relay@campus.smtp-relay.test", "password": secrets.token_urlsafe(12)},
    }


def relay_config(creds: dict) -> dict:
    users = {entry["username"]: entry["password"] for key, entry in creds.items() if key != "ses"}
    users[creds["ses"]["username"]] = list(creds["ses"]["passwords"].values())
    listeners = [
        {
            "name": name,
            "host": "",
            "port": port,
            "tls": tls,
            "auth": auth,
            "cert": "/peers/certs/providers.pem",
            "key": "/peers/certs/providers.key",
            "open_clients": [CLIENT_IP4, CLIENT_IP6],
        }
        for name, (port, tls, auth) in LISTENERS.items()
    ]
    return {
        "hostname": NAMES["sendgrid"][0],
        "records_dir": "/peers/providers/records",
        "ready_file": "/peers/providers/ready.json",
        "users": users,
        "reject_senders": [],
        "reject_recipients": [],
        "listeners": listeners,
    }


RELAY_CMD = (
    "exec python3 /project/tests/peers/relay.py --config /peers/providers/config.json >>/peers/providers/log 2>&1"
)


def up() -> dict:
    """(Re)start the providers' relay with fresh credentials and no records; add it to peers.json."""
    down()
    shutil.rmtree(STATE / "records", ignore_errors=True)
    (STATE / "records").mkdir(parents=True, exist_ok=True)
    creds = credentials()
    config = STATE / "config.json"
    config.write_text(json.dumps(relay_config(creds), indent=2))
    config.chmod(0o600)
    aliases = [arg for name in ALL_NAMES for arg in ("--network-alias", name)]
    lab.podman(
        "run", "-d", "--name", CONTAINER, "--network", lab.NETWORK, "--ip", IP4, "--ip6", IP6, *aliases,
        "-v", f"{lab.ROOT}:/project:ro", "-v", f"{lab.STATE}:/peers", lab.PEERS_IMAGE, "sleep", "infinity",
    )  # fmt: skip
    lab.podman("exec", "-d", CONTAINER, "sh", "-c", RELAY_CMD)
    for port, *_unused in LISTENERS.values():
        lab.wait_for_port(IP4, port)
    info = {
        "ipv4": IP4,
        "ipv6": IP6,
        "names": NAMES,
        "ports": {name: spec[0] for name, spec in LISTENERS.items()},
        "open_clients": {"ipv4": CLIENT_IP4, "ipv6": CLIENT_IP6},
        "office365_tenant": OFFICE365_TENANT,
        "credentials": creds,
        "records_dir": str(STATE / "records"),
    }
    everything = lab.info()
    everything["providers"] = info
    lab.INFO.write_text(json.dumps(everything, indent=2))
    lab.INFO.chmod(0o600)
    print(f"providers up: {IP4} ports {info['ports']}, names {', '.join(ALL_NAMES)}")
    return info


def down() -> None:
    lab.podman("rm", "-f", "-t", "2", CONTAINER, check=False)


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m tests.peers.providers {up|down}", file=sys.stderr)
        return 2
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
