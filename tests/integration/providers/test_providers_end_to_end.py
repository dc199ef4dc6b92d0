# SPDX-License-Identifier: GPL-3.0-or-later
"""Every provider preset of the role, end to end: mail sent on a host configured with it arrives at the lab.

The lab's providers relay (tests/peers/providers.py) answers to each provider's host name through podman's DNS,
which is where the host's Postfix looks relays up; its certificate comes from the lab CA
(``postfix_relay_ca_file`` points at it, presets otherwise trust the system bundle), and it plays each provider's
AUTH rules. One host is reconfigured preset after preset; each mail must arrive with the preset's AUTH user (or
admitted by IP, without AUTH). A wrong SendGrid API key is refused with the relay's own reply, shown by relay_check.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-providers-h1"
HERE = Path(__file__).resolve().parent
SENDER = fleet.SENDER
RCPT = "ops@dest.smtp-relay.test"


@pytest.fixture(scope="module")
def providers():
    everything = lab.info()
    if "providers" not in everything:
        pytest.fail("the lab has no providers relay: restart it with `python -m tests.peers.lab up`")
    return everything["providers"]


@pytest.fixture(scope="module")
def host(providers):
    clients = providers["open_clients"]
    fleet.start_host(HOST, "app1.campus.smtp-relay.test", ips=(clients["ipv4"], clients["ipv6"]))
    yield HOST
    fleet.remove_host(HOST)


def credentials(providers, key, **extra):
    entry = providers["credentials"][key]
    return {"postfix_relay_username": entry["username"], "postfix_relay_password": entry["password"], **extra}


def ses(providers, region):
    entry = providers["credentials"]["ses"]
    return {
        "postfix_relay_ses_region": region,
        "postfix_relay_username": entry["username"],
        "postfix_relay_ses_secret_access_key": entry["secret_access_key"],
    }


# id -> (preset, its variables from the lab's credentials, expected relayhost, listener, AUTH user or None)
CASES = {
    "sendgrid": (
        "sendgrid",
        lambda p: {"postfix_relay_password": p["credentials"]["sendgrid"]["password"]},
        "[smtp.sendgrid.net]:587",
        "provider_submission",
        lambda p: "apikey",
    ),
    "ses-eu-west-1": (
        "ses",
        lambda p: ses(p, "eu-west-1"),
        "[email-smtp.eu-west-1.amazonaws.com]:587",
        "provider_submission",
        lambda p: p["credentials"]["ses"]["username"],
    ),
    "ses-us-east-1": (
        "ses",
        lambda p: ses(p, "us-east-1"),
        "[email-smtp.us-east-1.amazonaws.com]:587",
        "provider_submission",
        lambda p: p["credentials"]["ses"]["username"],
    ),
    "mailgun-us": (
        "mailgun",
        lambda p: credentials(p, "mailgun"),
        "[smtp.mailgun.org]:587",
        "provider_submission",
        lambda p: p["credentials"]["mailgun"]["username"],
    ),
    "mailgun-eu": (
        "mailgun",
        lambda p: credentials(p, "mailgun", postfix_relay_mailgun_region="eu"),
        "[smtp.eu.mailgun.org]:587",
        "provider_submission",
        lambda p: p["credentials"]["mailgun"]["username"],
    ),
    "office365": (
        "office365",
        lambda p: credentials(p, "office365"),
        "[smtp.office365.com]:587",
        "provider_submission",
        lambda p: p["credentials"]["office365"]["username"],
    ),
    "office365_connector": (
        "office365_connector",
        lambda p: {"postfix_relay_office365_tenant": p["office365_tenant"]},
        "[contoso-lab.mail.protection.outlook.com]:25",
        "provider_connector",
        lambda p: None,
    ),
    "google_relay-by-ip": (
        "google_relay",
        lambda p: {},
        "[smtp-relay.gmail.com]:587",
        "provider_submission",
        lambda p: None,
    ),
    "google_relay-with-auth": (
        "google_relay",
        lambda p: credentials(p, "google_relay"),
        "[smtp-relay.gmail.com]:587",
        "provider_submission",
        lambda p: p["credentials"]["google_relay"]["username"],
    ),
    "gmail": (
        "gmail",
        lambda p: credentials(p, "gmail"),
        "[smtp.gmail.com]:587",
        "provider_submission",
        lambda p: p["credentials"]["gmail"]["username"],
    ),
}


def preset_vars(preset, variables):
    return {
        "postfix_relay_provider": preset,
        "postfix_relay_ca_file": fleet.CA_ON_HOST,
        "postfix_sender_address": SENDER,
        **variables,
    }


def send(subject):
    script = f"printf 'Subject: {subject}\\n\\nsent through a provider preset\\n' | /usr/sbin/sendmail {RCPT}"
    fleet.podman("exec", HOST, "sh", "-c", script)


def test_the_lab_dns_serves_every_provider_name(providers):
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [lab.info()["dns"]["nameserver"]]
    for name in [name for names in providers["names"].values() for name in names]:
        assert [a.address for a in resolver.resolve(name, "A", lifetime=5)] == [providers["ipv4"]], name
        assert [a.address for a in resolver.resolve(name, "AAAA", lifetime=5)] == [providers["ipv6"]], name


@pytest.mark.parametrize("case", list(CASES))
def test_mail_through_each_preset_arrives_with_its_auth_user(tmp_path, providers, host, case):
    preset, variables, relayhost, listener, auth_user = CASES[case]
    wanted = preset_vars(preset, variables(providers))
    rc, _changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", wanted)
    assert rc == 0, fleet.failures(output) or output
    assert fleet.on_host(HOST, "postconf", "-h", "relayhost").strip() == relayhost
    # Basic SMTP AUTH at Microsoft 365 ends for existing tenants in December 2026: said in the play's output.
    said = " ".join(output.split())
    warned = "Microsoft 365 disables Basic SMTP AUTH" in said and "office365_connector" in said
    assert warned == (preset == "office365"), said[-3000:]
    if case == "office365_connector":  # the new variable: a second run and a check run change nothing
        for check_mode in (False, True):
            rc, changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", wanted, check_mode=check_mode)
            assert (rc, changed[HOST]) == (0, []), fleet.failures(output) or output

    subject = f"provider {case} {time.time()}"
    send(subject)
    record = records.wait_for(providers["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=90)
    assert record["listener"] == listener
    assert record["tls"] is True, "STARTTLS with the lab CA's certificate for the provider's name"
    assert record["auth_user"] == auth_user(providers)
    assert (record["mail_from"], record["rcpt_tos"]) == (SENDER, [RCPT])
    if auth_user(providers) is None:
        assert record["peer"] in providers["open_clients"].values(), "admitted by the host's IP"


def test_wrong_api_key_is_refused_with_the_relays_reply(tmp_path, providers, host):
    variables = {"postfix_relay_password": providers["credentials"]["sendgrid"]["password"]}
    rc, _changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", preset_vars("sendgrid", variables))
    assert rc == 0, fleet.failures(output) or output
    wrong = "SG.not-the-key-" + str(int(time.time()))
    probe = {"ca_file": fleet.CA_ON_HOST, "username": "apikey", "password": wrong}
    rc, _changed, output = fleet.play(tmp_path, [HOST], str(HERE / "relay_check.yml"), probe)
    assert rc != 0, output
    failure = fleet.failures(output)
    assert "auth.rejected" in failure and "535" in failure, failure
    assert wrong not in output, "the password is never shown"
    probe["password"] = variables["postfix_relay_password"]
    rc, _changed, output = fleet.play(tmp_path, [HOST], str(HERE / "relay_check.yml"), probe)
    assert rc == 0, fleet.failures(output) or output
