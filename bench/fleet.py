# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet benchmark: the role and playbooks on N Debian containers, as ratios to `ansible -m ping` in the same run.

    python bench/fleet.py [--hosts 1,10,30] [--runs 3] [--out bench/results]

Needs the lab up (the Makefile starts it). For each fleet size it starts N systemd containers on the lab
network, then measures, each `--runs` times (median reported): the floor (`ansible all -m ping`, forks N),
the first converge (on fresh containers), the no-change rerun, `--check --diff`, `smtp.relay.verify` with
and without the probe, and a mail through the relay (sendmail to arrival at the relay). Per run: wall time,
remote module executions per host (task results of actions that run on the host) and the controller's peak
memory (largest process). Results go to bench/results/<date>.md and .json. Transport: the podman connection.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import fleet  # noqa: E402
from tests.peers import lab, records  # noqa: E402

# Actions that run on the controller only: everything else is a round trip to the host.
LOCAL_ACTIONS = {
    "set_fact", "include_vars", "include_tasks", "import_tasks", "include_role", "import_role", "debug", "assert",
    "meta", "validate_argument_spec", "fail", "add_host", "group_by",
}  # fmt: skip
NAME = "smtprelay-bench-{:02d}"


def campus_vars(info: dict) -> dict:
    relay = info["relay"]
    return {
        "postfix_relay_host": relay["host"],
        "postfix_relay_port": relay["ports"]["submission"],
        "postfix_relay_ca_file": fleet.CA_ON_HOST,
        "postfix_relay_username": relay["username"],
        "postfix_relay_password": relay["password"],
        "postfix_sender_address": "noreply@campus.smtp-relay.test",
        "postfix_allowed_sender_domains": relay["campus_domains"],
    }


def start_fleet(count: int) -> list[str]:
    hosts = [NAME.format(i) for i in range(count)]
    for host in hosts:
        fleet.start_host(host, f"{host}.smtp-relay.test")
    time.sleep(3)  # let systemd reach its targets
    return hosts


def stop_fleet(hosts: list[str]) -> None:
    for host in hosts:
        fleet.remove_host(host)


def measure(command: list[str], env: dict) -> dict:
    """Wall time, exit code, remote task executions per host (from the json callback) and peak memory."""
    script = (
        "import json, resource, subprocess, sys, time; t = time.monotonic(); "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stdout.write(json.dumps({'rc': p.returncode, 'wall': time.monotonic() - t, "
        "'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 'out': p.stdout, 'err': p.stderr}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *command], check=False, capture_output=True, text=True, env=env
    )
    result = json.loads(done.stdout)
    result["remote_per_host"] = remote_tasks(result.pop("out"))
    result["err"] = result["err"][-2000:] if result["rc"] else ""
    return result


def remote_tasks(output: str) -> float | None:
    """Mean number of task results per host whose action runs on the host (skipped ones excluded)."""
    if "{" not in output:
        return None
    document = json.JSONDecoder().raw_decode(output[output.index("{") :])[0]
    counts: dict[str, int] = {}
    for one_play in document.get("plays", []):
        for task in one_play["tasks"]:
            for host, result in task["hosts"].items():
                counts.setdefault(host, 0)
                short = str(result.get("action") or "").rsplit(".", 1)[-1]
                if short and short not in LOCAL_ACTIONS and not result.get("skipped"):
                    counts[host] += 1
    return round(sum(counts.values()) / len(counts), 2) if counts else None


def write_inventory(workdir: Path, hosts: list[str], variables: dict) -> tuple[Path, Path]:
    inventory = workdir / "inventory.ini"
    inventory.write_text("".join(f"{h} ansible_connection=containers.podman.podman\n" for h in hosts))
    extra = workdir / "vars.json"
    extra.write_text(json.dumps(variables))
    extra.chmod(0o600)
    return inventory, extra


def bench_size(count: int, runs: int, workdir: Path, fact_cache: bool) -> dict:
    info = lab.info()
    variables = campus_vars(info)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_FORKS=str(count))
    if fact_cache:
        # Facts kept between runs: a rerun needs no fact gathering at all.
        cache = workdir / f"facts-{count}"
        shutil.rmtree(cache, ignore_errors=True)
        env.update(ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(cache))
    hosts: list[str] = []
    try:
        hosts = start_fleet(count)
        inventory, extra = write_inventory(workdir, hosts, variables)
        playbook = ["ansible-playbook", "-i", str(inventory), "-e", f"@{extra}"]
        commands = {
            "floor: ansible -m ping": ["ansible", "all", "-i", str(inventory), "-m", "ansible.builtin.ping"],
            "no-change rerun": [*playbook, "smtp.relay.configure"],
            "--check --diff": [*playbook, "smtp.relay.configure", "--check", "--diff"],
            "verify (live probe)": [*playbook, "smtp.relay.verify"],
            "verify probe=false": [*playbook, "smtp.relay.verify", "-e", "probe=false"],
        }
        table: dict[str, list[dict]] = {"first converge": [measure([*playbook, "smtp.relay.configure"], env)]}
        for name, command in commands.items():
            table[name] = [measure(command, env) for _ in range(runs)]
        table["mail through the relay"] = [mail_time(hosts[0]) for _ in range(runs)]
    finally:
        stop_fleet(hosts)
    return summarize(table)


def mail_time(host: str) -> dict:
    subject = f"bench {time.time()}"
    started = time.monotonic()
    fleet.podman("exec", host, "sh", "-c", f"printf 'Subject: {subject}\\n\\nx\\n' | sendmail -t ops@smtp-relay.test")
    records.wait_for(lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, 60)
    return {"rc": 0, "wall": time.monotonic() - started, "rss_kib": None, "remote_per_host": None, "err": ""}


def summarize(table: dict[str, list[dict]]) -> dict:
    floor = statistics.median(r["wall"] for r in table["floor: ansible -m ping"])
    summary = {}
    for name, results in table.items():
        wall = statistics.median(r["wall"] for r in results)
        rss = [r["rss_kib"] for r in results if r["rss_kib"]]
        tasks = [r["remote_per_host"] for r in results if r["remote_per_host"] is not None]
        summary[name] = {
            "runs": len(results),
            "wall_s": round(wall, 2),
            "ratio_to_floor": round(wall / floor, 2),
            "remote_tasks_per_host": statistics.median(tasks) if tasks else None,
            "controller_peak_mib": round(max(rss) / 1024, 1) if rss else None,
            "failed_runs": sum(1 for r in results if r["rc"] != 0),
            "errors": [r["err"] for r in results if r["err"]][:1],
        }
    return summary


def versions() -> dict:
    ansible = subprocess.run(["ansible", "--version"], check=False, capture_output=True, text=True).stdout
    podman = subprocess.run(["podman", "--version"], check=False, capture_output=True, text=True).stdout
    return {"ansible": ansible.split("\n")[0], "podman": podman.strip(), "python": platform.python_version()}


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine())  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1), "arch": platform.machine()}


def markdown(report: dict) -> str:
    lines = [
        f"# Fleet benchmark, {report['date']}",
        "",
        f"Machine: {report['machine']['cores']} cores, {report['machine']['cpu']}, "
        f"{report['machine']['memory_gib']} GiB. {report['versions']['ansible']}; {report['versions']['podman']}.",
        f"Settings: {report['settings']}.",
        "",
    ]
    for size, summary in report["sizes"].items():
        lines += [
            f"## {size} hosts",
            "",
            "| run | wall (median) | x floor | remote tasks per host | controller peak MiB | runs (failed) |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in summary.items():
            lines.append(
                f"| {name} | {row['wall_s']} s | {row['ratio_to_floor']} | {row['remote_tasks_per_host'] or '-'} | "
                f"{row['controller_peak_mib'] or '-'} | {row['runs']} ({row['failed_runs']}) |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", default="10", help="fleet sizes, comma separated (e.g. 1,10,30)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--no-fact-cache", action="store_true", help="gather facts on every run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workdir = ROOT / ".cache" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "versions": versions(),
        "settings": "podman connection, forks = host count, strategy linear, "
        + ("no fact cache" if args.no_fact_cache else "jsonfile fact cache (the first converge fills it)"),
        "sizes": {},
    }
    for size in (int(s) for s in args.hosts.split(",")):
        print(f"fleet of {size}: ...", flush=True)
        report["sizes"][str(size)] = bench_size(size, args.runs, workdir, not args.no_fact_cache)
        print(json.dumps(report["sizes"][str(size)], indent=1), flush=True)
    stem = out / report["date"]
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
