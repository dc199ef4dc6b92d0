# SPDX-License-Identifier: GPL-3.0-or-later
"""Test zones for sender_check, one per case of the issue; served only by our NSD on 127.0.0.1.

The names look real (special-use names are refused by the module before any DNS question), but they are only
ever asked of the test server: the resolver is pointed at it and nowhere else.
"""

from __future__ import annotations

from tests.unit.plugins.module_utils.sender_fakes import rsa_key_b64

RELAY_IP = "127.0.1.25"
RELAY_NET = "127.0.1.0/24"
CHAIN = 11  # include chain longer than the 10-lookup limit


def txt(text: str) -> str:
    """A TXT rdata in zone syntax, split into strings of at most 255 octets."""
    parts = [text[i : i + 250] for i in range(0, len(text), 250)] or [""]
    return "TXT " + " ".join(f'"{p}"' for p in parts)


def dkim(bits: int | None, flags: str = "") -> str:
    return txt(f"v=DKIM1; k=rsa; {flags}p={rsa_key_b64(bits) if bits else ''}")


SPF_RELAY = txt("v=spf1 include:_spf.relay-lab.net -all")
MX = "@ MX 10 mx\nmx A 127.0.0.80\n"

ZONES = {
    "relay-lab.net": "\n".join(
        [
            f"smtp A {RELAY_IP}",
            f"_spf {txt(f'v=spf1 ip4:{RELAY_NET} -all')}",
            f"bounce {SPF_RELAY}",
            "bounce MX 10 smtp",
            f"s1.dkim {dkim(2048)}",
            "s2.dkim CNAME s2b.dkim",
            f"s2b.dkim {dkim(2048)}",
            *(f"l{i}.chain {txt(f'v=spf1 include:l{i + 1}.chain.relay-lab.net -all')}" for i in range(1, CHAIN)),
            f"l{CHAIN}.chain {txt(f'v=spf1 ip4:{RELAY_NET} -all')}",
        ]
    ),
    "sender-ok.org": MX
    + f"""@ {SPF_RELAY}
_dmarc {txt("v=DMARC1; p=reject; rua=mailto:dmarc@sender-ok.org")}
s1._domainkey CNAME s1.dkim.relay-lab.net.
s2._domainkey CNAME s2.dkim.relay-lab.net.
www A 127.0.0.81
""",
    "too-many.org": MX + f"@ {txt('v=spf1 include:l1.chain.relay-lab.net -all')}\n",
    "void-lookups.org": MX
    + "@ "
    + txt(
        "v=spf1 a:nx1.void-lookups.org a:nx2.void-lookups.org mx:nx3.void-lookups.org include:_spf.relay-lab.net -all"
    )
    + "\n",
    "two-spf.org": MX + f"@ {SPF_RELAY}\n@ {txt('v=spf1 a -all')}\n",
    "keys.org": MX
    + f"""@ {SPF_RELAY}
revoked._domainkey {dkim(None)}
short._domainkey {dkim(768)}
mid._domainkey {dkim(1024)}
testing._domainkey {dkim(2048, "t=y; ")}
""",
    "parent-dmarc.org": f"""_dmarc {txt("v=DMARC1; p=quarantine; sp=reject; rua=mailto:dmarc@parent-dmarc.org")}
mail MX 10 mx
mx A 127.0.0.82
mail {SPF_RELAY}
""",
    "null-mx.org": f"@ MX 0 .\n@ {txt('v=spf1 -all')}\n",
    "misaligned.org": MX + f"@ {txt('v=spf1 ip4:192.0.2.0/24 -all')}\n_dmarc {txt('v=DMARC1; p=reject')}\n",
}
