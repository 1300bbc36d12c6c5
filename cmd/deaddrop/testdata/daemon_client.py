#!/usr/bin/env python3
"""A deaddrop daemon client in another language, standard library only.

Usage: daemon_client.py <deaddrop binary> <alice home> <bob home>
Both homes hold accounts (alice, bob) on one store, not yet contacts. The
script drives alice's daemon over standard input/output and bob's over its
Unix socket, and exits non-zero (with a message) on the first surprise.
"""
import json
import os
import socket
import subprocess
import sys
import time


class RPC:
    """JSON-RPC 2.0, one object per line, over a pair of byte streams."""

    def __init__(self, rfile, wfile):
        self.r, self.w = rfile, wfile
        self.next_id = 0
        self.events = []  # notifications seen while waiting for responses

    def send_raw(self, line):
        self.w.write(line.encode() + b"\n")
        self.w.flush()

    def read(self):
        line = self.r.readline()
        if not line:
            raise SystemExit("daemon closed the stream")
        return json.loads(line)

    def call_full(self, method, params=None):
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            req["params"] = params
        self.send_raw(json.dumps(req))
        while True:
            msg = self.read()
            if "id" not in msg:
                self.events.append(msg)
                continue
            if msg["id"] != self.next_id:
                raise SystemExit("response for id %r, want %r" % (msg["id"], self.next_id))
            if msg.get("jsonrpc") != "2.0":
                raise SystemExit("response without jsonrpc 2.0: %r" % msg)
            return msg

    def call(self, method, params=None):
        msg = self.call_full(method, params)
        if "error" in msg:
            raise SystemExit("%s: error %r" % (method, msg["error"]))
        return msg["result"]

    def error(self, method, params, code):
        msg = self.call_full(method, params)
        if msg.get("error", {}).get("code") != code:
            raise SystemExit("%s %r: want error %d, got %r" % (method, params, code, msg))
        return msg["error"]

    def event(self, kind, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, e in enumerate(self.events):
                if e["params"]["kind"] == kind:
                    return self.events.pop(i)["params"]
            msg = self.read()
            if "id" in msg:
                raise SystemExit("unexpected response %r" % msg)
            if msg.get("method") != "event":
                raise SystemExit("unexpected notification %r" % msg)
            self.events.append(msg)
        raise SystemExit("no %s event in %ds" % (kind, timeout))


def expect(cond, what):
    if not cond:
        raise SystemExit("failed: " + what)


def main():
    binary, alice_home, bob_home = sys.argv[1:4]
    env = dict(os.environ, DEADDROP_HOME="")
    alice_p = subprocess.Popen([binary, "--home", alice_home, "daemon", "--socket=false"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    bob_p = subprocess.Popen([binary, "--home", bob_home, "daemon", "--stdio=false"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    try:
        alice = RPC(alice_p.stdout, alice_p.stdin)
        h = alice.call("health")
        expect(h["ok"] and h["account"] == "alice" and len(h["device"]) == 16, "health %r" % h)

        # Bob's daemon listens on its socket once it has opened the account.
        sock_path = os.path.join(bob_home, "rpc.sock")
        for _ in range(300):
            if os.path.exists(sock_path):
                break
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        bob = RPC(s.makefile("rb"), s.makefile("wb"))
        expect(bob.call("health")["account"] == "bob", "bob's health")

        # Standard errors.
        alice.send_raw("{not json")
        expect(alice.read()["error"]["code"] == -32700, "parse error")
        alice.send_raw(json.dumps({"jsonrpc": "1.0", "id": 99, "method": "health"}))
        expect(alice.read()["error"]["code"] == -32600, "invalid request")
        alice.error("sing", None, -32601)
        alice.error("send", {"contact": "bob"}, -32004)  # empty body
        alice.error("send", {"contact": "carol", "body": "hi"}, -32001)
        alice.error("history", {"contact": "bob", "sinse": "1d"}, -32602)
        alice.error("invite", {"name": "bob", "ttl": "-1h"}, -32602)
        # A batch, with a notification (no id) that gets no answer.
        alice.send_raw(json.dumps([
            {"jsonrpc": "2.0", "id": "a", "method": "health"},
            {"jsonrpc": "2.0", "method": "health"},
            {"jsonrpc": "2.0", "id": "b", "method": "contacts"},
        ]))
        batch = alice.read()
        expect(isinstance(batch, list) and sorted(r["id"] for r in batch) == ["a", "b"], "batch %r" % batch)

        expect(alice.call("contacts") == {"contacts": []}, "no contacts yet")
        inv = alice.call("invite", {"name": "bob", "ttl": "1d"})
        invites = alice.call("invites")["invites"]
        expect([i["name"] for i in invites] == ["bob"], "pending invites %r" % invites)
        expect(bob.call("accept", {"invite": inv["invite"]})["contact"] == "alice", "accept")

        # Bob subscribes before anything arrives: nothing is missed.
        sub = bob.call("subscribe", {"every": "200ms"})["subscription"]

        # Alice learns that bob joined (his accept wrote to the invite's slot).
        read = alice.call("read")
        expect(read["joined"] == ["bob"], "alice read %r" % read)

        # Idempotent send: one message for two calls with one clientId.
        first = alice.call("send", {"contact": "bob", "body": "hello from python", "clientId": "py-1"})
        again = alice.call("send", {"contact": "bob", "body": "hello from python", "clientId": "py-1"})
        expect(first["message"]["id"] == again["message"]["id"], "idempotent send %r %r" % (first, again))
        expect(first["message"]["direction"] == "outgoing", "direction %r" % first)

        ev = bob.event("message")
        expect(ev["subscription"] == sub and ev["message"]["body"] == "hello from python", "event %r" % ev)
        expect(ev["message"]["id"] == first["message"]["id"], "one ID on both sides")
        bob.call("send", {"contact": "alice", "body": "hi alice"})
        got = []
        for _ in range(50):
            r = alice.call("read", {"contact": "bob"})
            got += [m["body"] for m in r["messages"]]
            if got:
                break
            time.sleep(0.1)
        expect(got == ["hi alice"], "alice read %r" % got)
        hist = alice.call("history", {"contact": "bob", "since": "1d"})["messages"]
        expect([m["body"] for m in hist] == ["hello from python", "hi alice"], "history %r" % hist)
        expect(alice.call("history", {"contact": "bob", "limit": 1})["messages"][0]["body"] == "hi alice", "limit")
        # The change feed resumes from a cursor: everything after it, once.
        latest = alice.call("changes", {"latest": True})
        expect(latest["changes"] == [] and latest["cursor"] > 0, "latest %r" % latest)
        feed = alice.call("changes", {"after": 0})
        ids = [c["message"]["id"] for c in feed["changes"]]
        expect(first["message"]["id"] in ids and len(ids) == len(set(ids)), "changes %r" % feed)
        expect(feed["cursor"] == latest["cursor"], "cursor %r vs %r" % (feed["cursor"], latest["cursor"]))
        contacts = bob.call("contacts")["contacts"]
        expect([c["name"] for c in contacts] == ["alice"], "contacts %r" % contacts)
        devs = alice.call("devices")
        expect(devs["version"] >= 1 and devs["devices"][0]["this"], "devices %r" % devs)
        bob.call("unsubscribe", {"subscription": sub})
        bob.error("unsubscribe", {"subscription": sub}, -32602)
        s.close()
    finally:
        alice_p.stdin.close()  # the stdio daemon stops at the end of its input
        rc = alice_p.wait(timeout=30)
        bob_p.terminate()
        bob_p.wait(timeout=30)
    expect(rc == 0, "alice's daemon exited %d" % rc)
    print("ok")


if __name__ == "__main__":
    main()
