# SPDX-License-Identifier: GPL-3.0-or-later
"""Test certificates for the relay peer: a CA, a good server cert, a wrong-name one and an expired one.

    python tests/peers/certs.py DIR --name relay.smtp-relay.test --ip 10.89.100.2 --ip 127.0.0.1

writes DIR/ca.pem, relay.pem/.key, wrongname.pem/.key and expired.pem/.key (needs trustme; runs on
the host, the files are then mounted into the peers container).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import trustme

WRONG_NAME = "wrong-name.smtp-relay.test"


def _write(path: str, data: bytes, mode: int) -> None:
    # Create with the final mode so a key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def make_certs(
    directory: str | os.PathLike, names: list[str], ips: list[str] = (), others: dict[str, list[str]] | None = None
) -> dict[str, str]:
    """Write the CA and the three server certificates into directory; return {label: path}.

    ``others``: more certificates from the same CA, {label: names} (the lab's providers: one for all their names).
    """
    identities = [*names, *ips]
    if not identities:
        raise ValueError("make_certs needs at least one name or IP address for the relay certificate")
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA(organization_name="smtp.relay test CA")
    now = datetime.datetime.now(datetime.UTC)
    leaves = {
        "relay": ca.issue_cert(*identities, common_name=identities[0]),
        "wrongname": ca.issue_cert(WRONG_NAME, common_name=WRONG_NAME),
        "expired": ca.issue_cert(
            *identities,
            common_name=identities[0],
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        ),
        **{label: ca.issue_cert(*hosts, common_name=hosts[0]) for label, hosts in (others or {}).items()},
    }
    paths = {"ca": os.path.join(directory, "ca.pem")}
    _write(paths["ca"], ca.cert_pem.bytes(), 0o644)
    for label, leaf in leaves.items():
        cert_path = os.path.join(directory, f"{label}.pem")
        key_path = os.path.join(directory, f"{label}.key")
        _write(cert_path, b"".join(blob.bytes() for blob in leaf.cert_chain_pems), 0o644)
        _write(key_path, leaf.private_key_pem.bytes(), 0o600)
        paths[label] = cert_path
        paths[f"{label}_key"] = key_path
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--name", action="append", default=[], help="DNS name of the relay (repeatable)")
    parser.add_argument("--ip", action="append", default=[], help="IP address of the relay (repeatable)")
    args = parser.parse_args(argv)
    if not args.name and not args.ip:
        parser.error("give at least one --name or --ip")
    for label, path in make_certs(args.directory, args.name, args.ip).items():
        print(f"{label}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
