# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet benchmark: the role and playbooks on N Debian containers, as ratios to `ansible -m ping` in the same run.

    python bench/fleet.py [--hosts 10] [--growth 1,30] [--runs 3] [--out bench/results]

Needs the lab up (the Makefile starts it). For each size in --hosts it starts N systemd containers on the lab
network and measures:
- the package installation alone (the apt module installing the role's packages on fresh containers, debconf
  preseeded as the role does): what a first converge cannot avoid;
- the first converge (on other fresh containers), once;
- then, over both transports (the podman connection, and SSH to the same containers with pipelining and
  ControlPersist), `--runs` rounds, each running every command once in turn (so that the machine's drift
  touches them all alike; medians reported): the floor (`ansible all -m ping`, forks N), the no-change rerun,
  `--check --diff`, `smtp.relay.verify` with and without the probe, and `smtp.relay.allowlist`;
- a mail through the relay (sendmail on a host to arrival at the relay).
For each size in --growth: the first converge, the floor and the rerun only (podman connection), to show how
the rerun grows with the fleet. Per run: wall time, remote module executions per host (task results of actions
that run on the host) and the controller's peak memory (largest process); per transport, the rerun's per-task
profile (the slowest host's time in each task). Results go to bench/results/<date>.md and .json.
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
# As the role preseeds it: Debian's "Internet Site" default would configure and start Postfix at install time.
PRESEED = "postfix postfix/main_mailer_type select No configuration"


def campus_vars(info: dict, workdir: Path) -> dict:
    """The SASL relay of the lab (tests/integration/fleet.py), plus what the allowlist playbook needs."""
    return {
        "allowlist_team": "Platform team",
        "allowlist_contact": "platform@campus.smtp-relay.test",
        "allowlist_purpose": "Benchmark",
        "allowlist_output_dir": str(workdir / "allowlist"),
        "allowlist_report_only": True,
        **fleet.sasl_vars(),
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


def remote_tasks(document: dict | None) -> float | None:
    """Mean number of task results per host whose action runs on the host (skipped ones excluded)."""
    if document is None:
        return None
    counts: dict[str, int] = {}
    for one_play in document.get("plays", []):
        for task in one_play["tasks"]:
            for host, result in task["hosts"].items():
                counts.setdefault(host, 0)
                short = str(result.get("action") or "").rsplit(".", 1)[-1]
                if short and short not in LOCAL_ACTIONS and not result.get("skipped"):
                    counts[host] += 1
    return round(sum(counts.values()) / len(counts), 2) if counts else None


def task_profile(document: dict | None) -> list[list]:
    """[task name, seconds] per task, slowest first: the time the play spent in it (the slowest host)."""
    if document is None:
        return []
    spent: dict[str, float] = {}
    for one_play in document.get("plays", []):
        for task in one_play["tasks"]:
            started = datetime.datetime.fromisoformat(task["task"]["duration"]["start"].replace("Z", "+00:00"))
            ended = datetime.datetime.fromisoformat(task["task"]["duration"]["end"].replace("Z", "+00:00"))
            name = task["task"]["name"]
            spent[name] = spent.get(name, 0.0) + (ended - started).total_seconds()
    return sorted(([name, round(sec, 2)] for name, sec in spent.items()), key=lambda row: -row[1])


def json_document(output: str) -> dict | None:
    if "{" not in output:
        return None
    return json.JSONDecoder().raw_decode(output[output.index("{") :])[0]


def measure(command: list[str], env: dict) -> dict:
    """Wall time, exit code, remote task executions per host, per-task profile (json callback), peak memory."""
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
    document = json_document(result.pop("out"))
    result["remote_per_host"] = remote_tasks(document)
    result["profile"] = task_profile(document)
    result["err"] = (failure_messages(document) + result["err"])[-2000:] if result["rc"] else ""
    return result


def failure_messages(document: dict | None) -> str:
    if document is None:
        return ""
    return "".join(
        f"{host}: {task['task']['name']}: {result.get('msg', '')}\n"
        for one_play in document.get("plays", [])
        for task in one_play["tasks"]
        for host, result in task["hosts"].items()
        if result.get("failed") or result.get("unreachable")
    )


def host_address(host: str) -> str:
    form = '{{(index .NetworkSettings.Networks "' + lab.NETWORK + '").IPAddress}}'
    return fleet.podman("inspect", "-f", form, host).stdout.strip()


def ssh_key(workdir: Path) -> Path:
    key = workdir / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def open_ssh(hosts: list[str], key: Path) -> None:
    """The image has sshd off: give root the benchmark's key and start it."""
    public = key.with_suffix(".pub").read_text()
    for host in hosts:
        fleet.podman("exec", host, "sh", "-c", f"install -d -m 700 /root/.ssh && echo '{public.strip()}' "
                     "> /root/.ssh/authorized_keys && systemctl start ssh")  # fmt: skip


def write_inventory(workdir: Path, hosts: list[str], variables: dict, key: Path | None = None) -> tuple[Path, Path]:
    """An INI inventory for the podman connection, or for SSH (then `key` logs in as root) to the same hosts."""
    if key is None:
        inventory = workdir / "inventory.ini"
        lines = [f"{h} ansible_connection=containers.podman.podman\n" for h in hosts]
    else:
        inventory = workdir / "inventory-ssh.ini"
        lines = [f"{h} ansible_host={host_address(h)} ansible_user=root ansible_ssh_private_key_file={key}\n"
                 for h in hosts]  # fmt: skip
    inventory.write_text("".join(lines))
    extra = workdir / "vars.json"
    extra.write_text(json.dumps(variables))
    extra.chmod(0o600)
    return inventory, extra


def base_env(count: int, workdir: Path, fact_cache: bool) -> dict:
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_FORKS=str(count))
    if fact_cache:
        # Facts kept between runs: a rerun needs no fact gathering at all.
        cache = workdir / f"facts-{count}"
        shutil.rmtree(cache, ignore_errors=True)
        env.update(ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(cache))
    return env


def ssh_env(env: dict, workdir: Path) -> dict:
    control = workdir / "cp"
    control.mkdir(exist_ok=True)
    return dict(
        env,
        ANSIBLE_PIPELINING="True",
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=/dev/null "
        "-o StrictHostKeyChecking=no -o LogLevel=ERROR",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(control),
    )


def package_installation(count: int, workdir: Path) -> dict:
    """The apt module installing the role's packages on fresh hosts, debconf preseeded as the role does."""
    hosts: list[str] = []
    try:
        hosts = start_fleet(count)
        for host in hosts:
            fleet.podman("exec", host, "sh", "-c", f"echo '{PRESEED}' | debconf-set-selections")
        inventory, _ = write_inventory(workdir, hosts, {})
        command = ["ansible", "all", "-i", str(inventory), "-m", "ansible.builtin.apt",
                   "-a", "name=postfix,libsasl2-modules,ca-certificates cache_valid_time=86400"]  # fmt: skip
        return measure(command, dict(os.environ, ANSIBLE_FORKS=str(count)))
    finally:
        stop_fleet(hosts)


def rounds(commands: dict[str, tuple[list[str], dict]], runs: int) -> dict[str, list[dict]]:
    """Each command once per round, in turn: a drift of the machine's speed touches them all alike."""
    table: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, env) in commands.items():
            table[name].append(measure(command, env))
    return table


def bench_size(count: int, runs: int, workdir: Path, fact_cache: bool, full: bool) -> dict:
    variables = campus_vars(lab.info(), workdir)
    env = base_env(count, workdir, fact_cache)
    table: dict[str, list[dict]] = {}
    if full:
        table["package installation alone (apt)"] = [package_installation(count, workdir)]
    hosts: list[str] = []
    try:
        hosts = start_fleet(count)
        inventory, extra = write_inventory(workdir, hosts, variables)
        playbook = ["ansible-playbook", "-i", str(inventory), "-e", f"@{extra}"]
        table["first converge"] = [measure([*playbook, "smtp.relay.configure"], env)]
        commands = {
            "floor: ansible -m ping": (["ansible", "all", "-i", str(inventory), "-m", "ansible.builtin.ping"], env),
            "no-change rerun": ([*playbook, "smtp.relay.configure"], env),
        }
        if full:
            commands.update({
                "--check --diff": ([*playbook, "smtp.relay.configure", "--check", "--diff"], env),
                "verify (live probe)": ([*playbook, "smtp.relay.verify"], env),
                "verify probe=false": ([*playbook, "smtp.relay.verify", "-e", "probe=false"], env),
                "allowlist": ([*playbook, "smtp.relay.allowlist"], env),
            })  # fmt: skip
            key = ssh_key(workdir)
            open_ssh(hosts, key)
            ssh_inventory, _ = write_inventory(workdir, hosts, variables, key)
            over_ssh = ssh_env(env, workdir)
            for name, (command, _env) in list(commands.items()):
                swapped = [str(ssh_inventory) if part == str(inventory) else part for part in command]
                commands[f"ssh: {name}"] = (swapped, over_ssh)
        table.update(rounds(commands, runs))
        if full:
            table["mail through the relay"] = [mail_time(hosts[0]) for _ in range(runs)]
    finally:
        stop_fleet(hosts)
    return summarize(table)


def mail_time(host: str) -> dict:
    subject = f"bench {time.time()}"
    started = time.monotonic()
    fleet.podman("exec", host, "sh", "-c", f"printf 'Subject: {subject}\\n\\nx\\n' | sendmail -t ops@smtp-relay.test")
    records.wait_for(lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, 60)
    wall = time.monotonic() - started
    return {"rc": 0, "wall": wall, "rss_kib": None, "remote_per_host": None, "profile": [], "err": ""}


def summarize(table: dict[str, list[dict]]) -> dict:
    """Medians; each ratio is to the floor of the same transport (SSH rows to the SSH floor)."""
    floors = {
        prefix: statistics.median(r["wall"] for r in table[f"{prefix}floor: ansible -m ping"])
        for prefix in ("", "ssh: ")
        if f"{prefix}floor: ansible -m ping" in table
    }
    summary = {}
    for name, results in table.items():
        floor = floors["ssh: " if name.startswith("ssh: ") else ""]
        wall = statistics.median(r["wall"] for r in results)
        slowest = max(results, key=lambda r: r["wall"])
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
            "profile_of_slowest_run": slowest["profile"][:8],
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
        for name in ("no-change rerun", "ssh: no-change rerun", "verify (live probe)", "ssh: verify (live probe)"):
            if summary.get(name, {}).get("profile_of_slowest_run"):
                lines += [f"Where the slowest `{name}` spent its time (per task, the slowest host):", ""]
                lines += [f"- {task}: {sec} s" for task, sec in summary[name]["profile_of_slowest_run"]]
                lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", default="10", help="fleet sizes measured in full, comma separated")
    parser.add_argument("--growth", default="", help="fleet sizes for first converge, floor and rerun only")
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
        "settings": "forks = host count, strategy linear, "
        + ("no fact cache" if args.no_fact_cache else "jsonfile fact cache (the first converge fills it)")
        + "; podman connection (no pipelining: the plugin has none); SSH with pipelining, ControlMaster auto, "
        "ControlPersist 120s",
        "sizes": {},
    }
    full = [int(n) for n in args.hosts.split(",") if n]
    growth = [int(n) for n in args.growth.split(",") if n and int(n) not in full]
    for size in sorted(full + growth):
        print(f"fleet of {size}: ...", flush=True)
        report["sizes"][str(size)] = bench_size(size, args.runs, workdir, not args.no_fact_cache, size in full)
        print(json.dumps(report["sizes"][str(size)], indent=1), flush=True)
    stem = out / report["date"]
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
