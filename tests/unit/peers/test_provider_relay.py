# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's providers relay: its AUTH rules (a list of passwords per user, clients admitted by IP without AUTH)
as a real relay process on 127.0.0.1, and its own SES password derivation against AWS's documented vectors."""

from __future__ import annotations

import json
import smtplib
import ssl
from pathlib import Path

import pytest

from tests.peers import certs, providers, relay
from tests.unit.peers.test_relay import message, start

NAME = "smtp.sendgrid.net"
PASSWORDS = ["region-one-pw", "region-two-pw"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("providers")
    paths = certs.make_certs(directory / "certs", names=["relay.test"], others={"providers": [NAME, "127.0.0.1"]})
    listeners = {"closed": ["10.89.100.249/32"], "open": ["127.0.0.1", "fd00:89:100::f9"]}
    config = {
        "hostname": NAME,
        "records_dir": str(directory / "records"),
        "ready_file": str(directory / "ready.json"),
        "users": {"AKIAEXAMPLE": PASSWORDS, "apikey": "SG.key"},
        "listeners": [
            {
                "name": name,
                "host": "127.0.0.1",
                "port": 0,
                "tls": "starttls",
                "auth": "optional",
                "cert": paths["providers"],
                "key": paths["providers_key"],
                "open_clients": clients,
            }
            for name, clients in listeners.items()
        ],
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    proc, ports = start(directory, path)
    yield ports, ssl.create_default_context(cafile=paths["ca"])
    proc.terminate()
    proc.wait(timeout=10)


def session(lab, listener):
    ports, context = lab
    smtp = smtplib.SMTP("127.0.0.1", ports[listener], timeout=5)
    smtp.starttls(context=context)  # the provider certificate, verified for the name
    smtp.ehlo("client.test")
    return smtp


def test_the_provider_certificate_names_the_providers(lab):
    with session(lab, "open") as smtp:
        names = [value for _kind, value in smtp.sock.getpeercert()["subjectAltName"]]
    assert NAME in names


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_user_with_several_passwords_is_admitted_with_each(lab, password):
    with session(lab, "closed") as smtp:
        smtp.login("AKIAEXAMPLE", password)
        smtp.send_message(message("app@sender.test", "ops@dest.test", "ses"))


def test_a_wrong_password_gets_535(lab):
    with session(lab, "closed") as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as raised:
        smtp.login("apikey", "SG.wrong")
    assert raised.value.smtp_code == 535


def test_without_auth_only_the_admitted_clients_may_send(lab):
    with session(lab, "closed") as smtp:
        code, reply = smtp.mail("app@sender.test")
    assert code == 530 and b"127.0.0.1 is not admitted by IP" in reply
    with session(lab, "open") as smtp:
        smtp.send_message(message("app@sender.test", "ops@dest.test", "by ip"))


def test_bad_open_clients_are_refused(tmp_path):
    listener = {"name": "x", "port": 25, "tls": "none", "auth": "none", "open_clients": ["10.0.0.300"]}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"records_dir": str(tmp_path), "listeners": [listener]}))
    with pytest.raises(relay.ConfigError, match="open_clients"):
        relay.Config.load(str(config))


# AWS's documented example secret and its SMTP passwords (also the collection's vectors: two derivations agree).
@pytest.mark.parametrize(
    ("region", "password"),
    [
        ("us-east-1", "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"),
        ("eu-west-1", "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk"),
    ],
)
def test_the_labs_ses_password_is_the_documented_one(region, password):
    assert providers.ses_smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region) == password


def test_every_preset_name_is_in_the_lab():
    assert set(providers.NAMES) == {
        "ses", "sendgrid", "mailgun", "office365", "office365_connector", "google_relay", "gmail"
    }  # fmt: skip
    creds = providers.credentials()
    assert creds["sendgrid"]["username"] == "apikey"
    assert len(creds["gmail"]["password"]) == 16, "a Gmail app password: 16 letters"
    assert set(creds["ses"]["passwords"]) == set(providers.SES_REGIONS)
    assert Path(providers.STATE).name == "providers"
