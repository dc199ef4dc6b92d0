# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark sender_check: N sender domains (default 500), each in its own zone, against a local NSD.

    .venv/bin/python bench/sender_check.py [--domains 500] [--runs 3] [--workers 16]

Each run is a fresh process (so peak memory is that run's own); the median of the runs is reported as domains
per second and peak resident memory (ru_maxrss). Every domain gets the full set of checks: MX, SPF walk and
evaluation for two relay IPs, one DKIM selector through a CNAME, DMARC and the alignment prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / ".cache" / "collections"), str(ROOT)]

# The repository and its collection link must be importable before our own imports (the script runs standalone).
from ansible_collections.smtp.relay.plugins.module_utils._sender.engine import check_senders  # noqa: E402

from tests.integration.sender_check.zones import ZONES, dkim, txt  # noqa: E402
from tests.peers.dns import nsd_server  # noqa: E402

RELAY_IPS = ["127.0.1.25", "127.0.1.26"]


def zones(count: int) -> dict[str, str]:
    result = {"relay-lab.net": ZONES["relay-lab.net"]}
    for i in range(count):
        result[f"bench-{i:04d}.org"] = "\n".join(
            [
                "@ MX 10 mx",
                "mx A 127.0.0.80",
                f"@ {txt('v=spf1 a mx include:_spf.relay-lab.net -all')}",
                f"@ A 127.0.2.{i % 250 + 1}",
                f"_dmarc {txt('v=DMARC1; p=quarantine; rua=mailto:dmarc@bench.org')}",
                "s1._domainkey CNAME s1.dkim.relay-lab.net.",
                f"s2._domainkey {dkim(2048)}",
                "",
            ]
        )
    return result


def child(args) -> None:
    params = {
        "domains": [f"bench-{i:04d}.org" for i in range(args.domains)],
        "relay_ips": RELAY_IPS,
        "dkim_selectors": ["s1", "s2"],
        "nameservers": ["127.0.0.1"],
        "dns_port": args.port,
        "timeout": 5.0,
        "deadline": 600.0,
        "workers": args.workers,
        "fail_on": [],  # measure, never stop on a failed check
    }
    started = time.perf_counter()
    result = check_senders(params)
    elapsed = time.perf_counter() - started
    passed = sum(1 for d in result["domains"].values() if d["valid"])
    print(json.dumps({
        "elapsed": elapsed,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "dns_queries": result["dns_queries"],
        "valid_domains": passed,
        "checks": sum(len(d["checks"]) for d in result["domains"].values()),
    }))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-nsd-") as work:
        t0 = time.perf_counter()
        with nsd_server(zones(args.domains), workdir=work, ready=60) as (_host, port):
            print(f"nsd with {args.domains + 1} zones ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            runs = []
            for n in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--port", str(port), "--domains", str(args.domains),
                     "--workers", str(args.workers)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                run = json.loads(out.stdout)
                runs.append(run)
                print(f"run {n + 1}: {json.dumps(run)}", file=sys.stderr)
    elapsed = statistics.median(r["elapsed"] for r in runs)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "domains": args.domains,
        "workers": args.workers,
        "runs": args.runs,
        "median_seconds": round(elapsed, 3),
        "domains_per_second": round(args.domains / elapsed, 1),
        "median_peak_rss_mib": round(statistics.median(r["maxrss_kib"] for r in runs) / 1024, 1),
        "dns_queries_per_run": runs[0]["dns_queries"],
        "valid_domains": runs[0]["valid_domains"],
    }
    print(json.dumps(report, indent=2))
    return 0 if report["valid_domains"] == args.domains else 1


if __name__ == "__main__":
    sys.exit(main())
