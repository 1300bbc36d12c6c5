package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A client written in another language (Python 3, standard library only)
// drives two daemons: one over standard input/output, one over its Unix
// socket (testdata/daemon_client.py says what it checks).
func TestDaemonPythonClient(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	us := newUsers(t, "", "alice", "bob")
	cmd := exec.Command(py, filepath.Join("testdata", "daemon_client.py"), binary, us[0].home, us[1].home)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("python client: %v\n%s", err, out)
	}
}

// While a daemon holds the home, send and read go through it instead of
// failing with "home is in use".
func TestSendReadThroughDaemon(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	d := alice.cmd("daemon", "--stdio=false")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { d.Process.Signal(os.Interrupt); d.Wait() }()
	sock := filepath.Join(alice.home, "rpc.sock")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 200 {
			t.Fatal("the daemon's socket did not appear")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := alice.ok("send", "bob", "via the daemon"); !strings.Contains(out, "sent to bob") && !strings.Contains(out, "queued for bob") {
		t.Fatalf("send through the daemon: %q", out)
	}
	bob.ok("send", "alice", "to the daemon's home")
	if out := alice.ok("read"); !strings.Contains(out, "bob: to the daemon's home") {
		t.Fatalf("read through the daemon: %q", out)
	}
	if out := bob.ok("read"); !strings.Contains(out, "alice: via the daemon") {
		t.Fatalf("bob read: %q", out)
	}
	// Commands the daemon does not carry still say why they cannot run.
	if _, errOut, code := alice.run("contacts"); code == 0 || !strings.Contains(errOut, "in use") {
		t.Fatalf("contacts while the daemon runs: exit %d, %q", code, errOut)
	}
}
