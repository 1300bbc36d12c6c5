package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
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

// startChat runs 'deaddrop chat contact' for u; waitFor reads its output
// until a line contains want.
func startChat(t *testing.T, u *user, contact string) (stdin io.WriteCloser, waitFor func(want string), c *exec.Cmd) {
	c = u.cmd("chat", contact, "--every", "100ms")
	stdin, _ = c.StdinPipe()
	stdout, _ := c.StdoutPipe()
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitFor = func(want string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("chat ended before %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("chat never showed %q", want)
			}
		}
	}
	return stdin, waitFor, c
}

// Two chats on one home: the second goes through the first, and both show
// every message and receipt.
func TestTwoChats(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	in1, wait1, chat1 := startChat(t, alice, "bob")
	wait1("chat with bob")
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(alice.home, "rpc.sock")); err == nil {
			break
		} else if i > 300 {
			t.Fatal("the first chat serves no socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	in2, wait2, chat2 := startChat(t, alice, "bob")
	wait2("through the process that holds this home")
	bob.ok("send", "alice", "ping to both")
	wait1("bob: ping to both")
	wait2("bob: ping to both")
	fmt.Fprintln(in2, "from the second chat")
	wait2("stored: from the second chat")
	fmt.Fprintln(in2, "/shrug")
	wait2(`unknown command "/shrug", not sent`)
	if out := bob.ok("read"); !strings.Contains(out, "alice: from the second chat") || strings.Contains(out, "shrug") {
		t.Fatalf("bob read %q", out)
	}
	wait2("delivered to bob: from the second chat")
	wait1("delivered to bob: from the second chat")
	fmt.Fprintln(in2, "/quit")
	if err := chat2.Wait(); err != nil {
		t.Fatalf("second chat: %v", err)
	}
	fmt.Fprintln(in1, "/quit")
	if err := chat1.Wait(); err != nil {
		t.Fatalf("first chat: %v", err)
	}
}

// startDaemon runs 'deaddrop daemon --stdio=false' for u until the test ends.
func startDaemon(t *testing.T, u *user) {
	t.Helper()
	d := u.cmd("daemon", "--stdio=false")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Signal(os.Interrupt); d.Wait() })
	sock := filepath.Join(u.home, "rpc.sock")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		if i > 200 {
			t.Fatal("the daemon's socket did not appear")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// While a daemon holds the home, send --file and save go through it (the
// daemon's sendFile and save), save taking contact:number or the 32-hex id.
func TestSendFileAndSaveThroughDaemon(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	startDaemon(t, alice)

	src := t.TempDir()
	data := randomFile(t, src, "notes.txt", 70<<10, 3)
	if out := alice.ok("send", "bob", "--file", filepath.Join(src, "notes.txt"), "my", "notes"); !strings.Contains(out, "sent to bob") {
		t.Fatalf("send --file through the daemon: %q", out)
	}
	out := bob.ok("read")
	if !strings.Contains(out, "alice: my notes [file notes.txt, 70.0 KiB, text/plain; deaddrop save alice:") {
		t.Fatalf("bob read: %q", out)
	}
	dst := t.TempDir()
	bob.ok("save", fileID(t, out), "--out", dst)
	if got, _ := os.ReadFile(filepath.Join(dst, "notes.txt")); !bytes.Equal(got, data) {
		t.Fatal("bob saved another file")
	}

	back := randomFile(t, src, "photo.jpg", 20<<10, 4)
	bob.ok("send", "alice", "--file", filepath.Join(src, "photo.jpg"))
	out = alice.ok("read") // through the daemon: the file and its save ID
	if !strings.Contains(out, "bob: [file photo.jpg, 20.0 KiB, image/jpeg; deaddrop save bob:") {
		t.Fatalf("alice read through the daemon: %q", out)
	}
	byNumber := t.TempDir()
	if out := alice.ok("save", fileID(t, out), "--out", byNumber); !strings.Contains(out, "SHA-256 verified") {
		t.Fatalf("save through the daemon: %q", out)
	}
	if got, _ := os.ReadFile(filepath.Join(byNumber, "photo.jpg")); !bytes.Equal(got, back) {
		t.Fatal("save by contact:number through the daemon saved another file")
	}
	// The same message by its global ID (bob's history shows it: it is the
	// same on both sides), to a new file's path.
	var hist struct{ Messages []struct{ ID string } }
	decode(t, bob.ok("history", "alice", "--json"), &hist)
	hexID := hist.Messages[len(hist.Messages)-1].ID
	target := filepath.Join(t.TempDir(), "copy.jpg")
	alice.ok("save", hexID, "--out", target)
	if got, _ := os.ReadFile(target); !bytes.Equal(got, back) {
		t.Fatal("save by id through the daemon saved another file")
	}
	if _, errOut, code := alice.run("save", "bob:99", "--out", t.TempDir()); code == 0 || !strings.Contains(errOut, "no such message") {
		t.Fatalf("save of no message through the daemon: exit %d, %q", code, errOut)
	}
}

// daemon --http serves JSON-RPC over HTTP on loopback with the token kept in
// the home, and refuses any other address.
func TestDaemonHTTP(t *testing.T) {
	us := newUsers(t, "", "alice")
	alice := us[0]
	if _, errOut, code := alice.run("daemon", "--http", "0.0.0.0:7878"); code != 2 || !strings.Contains(errOut, "loopback") {
		t.Fatalf("--http on every interface: exit %d, %q", code, errOut)
	}
	d := alice.cmd("daemon", "--stdio=false", "--socket=false", "--http", "127.0.0.1:0")
	stderr, _ := d.StderrPipe()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { d.Process.Signal(os.Interrupt); d.Wait() }()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	_, rest, ok := strings.Cut(line, "serving HTTP on ")
	if err != nil || !ok {
		t.Fatalf("daemon --http said %q (%v)", line, err)
	}
	url, _, _ := strings.Cut(rest, " ")
	tok, err := os.ReadFile(filepath.Join(alice.home, "http.token"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(alice.home, "http.token")); st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", st.Mode())
	}
	req, _ := http.NewRequest("POST", url+"/rpc", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"health"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"account":"alice"`) {
		t.Fatalf("health over HTTP: %d %s", resp.StatusCode, body)
	}
}
