#!/usr/bin/env bash
# The alice/bob demo: two separate deaddrop processes with their own homes talk
# through one store (the embedded store in a temporary directory by default;
# set DEADDROP_DEMO_STORE to e.g. swarm:http://127.0.0.1:1633). Bob goes
# offline while alice sends 50 messages; bob comes back, reads all 50 in order,
# and alice sees them marked read. Then alice links a laptop, loses her first
# device, and restores the account on a phone from the recovery phrase alone;
# the phone has the whole history and keeps chatting. Exits non-zero if
# anything is missing.
set -euo pipefail

bin=${DEADDROP_BIN:?set DEADDROP_BIN to the deaddrop binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/deaddrop-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
store=${DEADDROP_DEMO_STORE:-embedded:$work/store}
N=50

alice() { "$bin" --home "$work/alice" "$@"; }
bob()   { "$bin" --home "$work/bob" "$@"; }
laptop(){ "$bin" --home "$work/alice-laptop" "$@"; }
phone() { "$bin" --home "$work/alice-phone" "$@"; }
say()   { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail()  { printf '\nDEMO FAILED: %s\n' "$*" >&2; exit 1; }

say "store: $store"
say "alice and bob create accounts"
alice init alice --store "$store" | tee "$work/alice-init.txt"
bob init bob --store "$store" >/dev/null
phrase=$(sed -n 's/^recovery phrase: //p' "$work/alice-init.txt")

say "alice invites bob; bob accepts (alice need not be online)"
invite=$(alice invite bob 2>/dev/null)
echo "invite: ${invite:0:48}…"
bob accept "$invite"

say "alice reads: bob's first message arrives at the invite's rendezvous slot"
alice read

say "a short exchange"
alice send bob "hi bob, this is alice"
bob read
bob send alice "hello alice! bob here"
alice read
alice send bob "great, the dead drop works"
bob read

say "bob goes offline; alice sends $N messages"
for i in $(seq 1 $N); do
  alice send bob "message $i of $N" >/dev/null
done
echo "alice sent $N messages"
alice status | grep -E '^contact' || true

say "bob comes back and catches up"
bob read | tee "$work/bob-read.txt"

say "alice checks receipts"
alice read

say "checking"
got=$(grep -oE 'alice: message [0-9]+ of '$N "$work/bob-read.txt" | sed 's/^alice: //')
want=$(for i in $(seq 1 $N); do echo "message $i of $N"; done)
[ "$got" = "$want" ] || fail "bob did not read all $N messages exactly once in order"
unread=$(alice history bob | grep -c 'message .* of '$N'  (delivered)' || true)
[ "$unread" -eq "$N" ] || fail "alice sees $unread of $N messages marked delivered"
echo "bob read all $N messages once, in order; alice sees all $N marked delivered"

say "alice links a second device, her laptop, with a one-time code"
# 'device link' prints the code, then waits for the new device's join and
# shows its fingerprint, as 'device join' does: both run at once.
alice device link laptop >"$work/link.txt" 2>/dev/null </dev/null &
link=$!
for _ in $(seq 1 100); do
  [ -s "$work/link.txt" ] && break
  sleep 0.1
done
code=$(head -n 1 "$work/link.txt")
[ -n "$code" ] || fail "device link printed no code"
laptop device join "$code" --store "$store"
wait "$link" || fail "device link did not see the laptop join"
tail -n +2 "$work/link.txt"
for round in 1 2 3; do bob read >/dev/null; laptop read >/dev/null; alice read >/dev/null; done
bob send alice "hello to both of alice's devices"
alice read
laptop read
laptop send bob "alice here, on the laptop"
bob read

say "alice's first device is destroyed; her new phone restores from the recovery phrase alone"
rm -rf "$work/alice"
printf '%s\n' "$phrase" | phone restore --store "$store" --device phone
phone history bob | tail -n 3
for round in 1 2 3; do bob read >/dev/null; phone read >/dev/null; done
bob send alice "welcome back, alice"
phone read | tee "$work/phone-read.txt"
grep -q 'bob: welcome back, alice' "$work/phone-read.txt" || fail "the restored phone did not get bob's next message"
[ "$(phone history bob | grep -c 'message .* of '$N)" -eq "$N" ] || fail "the restored history lacks some of the $N messages"
echo "the restored phone has the whole history and keeps chatting with bob"
say "demo passed"
