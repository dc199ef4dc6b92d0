#!/bin/bash
# make demo: a local fleet of three containers is configured, verified, sends a mail through the
# lab relay, and gets its allowlist requests written. Needs the lab up (the Makefile starts it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo-out
hosts=(web1 web2 db1)
mkdir -p "$out"
python=.venv/bin/python

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
    if [ "${DEMO_KEEP:-0}" != 1 ]; then
        for h in "${hosts[@]}"; do podman rm -f -t 0 "smtprelay-demo-$h" >/dev/null 2>&1 || true; done
        $python -m tests.peers.lab down >/dev/null
    else
        echo "fleet and lab left running (DEMO_KEEP=1); stop them with: make clean"
    fi
}
trap cleanup EXIT

step "Start the fleet: ${hosts[*]} (Debian 12 containers with systemd)"
for h in "${hosts[@]}"; do
    podman rm -f -t 0 "smtprelay-demo-$h" >/dev/null 2>&1 || true
    podman run -d --name "smtprelay-demo-$h" --hostname "$h.smtp-relay.test" --network smtprelay \
        --systemd=always localhost/smtprelay-debian:bookworm /sbin/init >/dev/null
done
podman ps --filter name=smtprelay- --format '{{.Names}}\t{{.Networks}}\t{{.Status}}'

# The relay's credentials exist only for this run; they go to the provider group through a 0600 file.
$python - "$out/secrets.yml" <<'PY'
import json, os, sys
lab = json.load(open(".peers/peers.json"))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump({"demo_relay_username": lab["relay"]["username"], "demo_relay_password": lab["relay"]["password"]}, f)
PY

step "Give the hosts the lab's test CA"
ansible all -i demo/inventory.yml -m ansible.builtin.copy \
    -a "src=.peers/certs/ca.pem dest=/usr/local/share/smtp-relay-test-ca.pem mode=0644" -o | cut -c1-100

step "Configure: ansible-playbook smtp.relay.configure"
ansible-playbook -i demo/inventory.yml smtp.relay.configure -e @"$out/secrets.yml"

step "Verify: ansible-playbook smtp.relay.verify (read-only; probes the relay from each host)"
ANSIBLE_CALLBACKS_ENABLED=ansible.builtin.junit JUNIT_OUTPUT_DIR="$PWD/$out/junit" \
    ansible-playbook -i demo/inventory.yml smtp.relay.verify -e @"$out/secrets.yml"

step "Send a test mail from each host with sendmail, and see it arrive at the relay"
for h in "${hosts[@]}"; do
    subject="demo mail from $h $(date +%s)"
    podman exec "smtprelay-demo-$h" sh -c "printf 'Subject: $subject\n\nHello from $h.\n' | /usr/sbin/sendmail -t ops@smtp-relay.test"
    $python -m tests.peers.records wait --subject "$subject" --timeout 60 |
        $python -c 'import json, sys; print("  relay got {id} from {peer} on port {port} (tls={tls}, auth={auth_user}):"
                   " MAIL FROM {mail_from} -> {rcpt_tos}".format(**json.load(sys.stdin)))'
done

step "Request access: ansible-playbook smtp.relay.allowlist"
ansible-playbook -i demo/inventory.yml smtp.relay.allowlist -e allowlist_output_dir="$PWD/$out/allowlist"
ls -l "$out/allowlist"
echo
cat "$out/allowlist/"*.md 2>/dev/null | head -20
