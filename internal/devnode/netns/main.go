// Command netns runs storage nodes inside a loopback-only network namespace
// for the multi-node test networks of package devnode. Its parent starts it
// in a new network namespace (CLONE_NEWNET) and hands it listening sockets
// bound on the host's loopback (ExtraFiles, fd 3 onwards); netns brings the
// namespace's lo up and forwards each of those sockets to a port inside the
// namespace, so the test reaches the nodes while the nodes reach nothing but
// each other: a namespace that has only lo cannot send a packet anywhere else.
//
// Usage: netns <in-namespace port for fd 3> <… for fd 4> …
//
// Control is one JSON object per line on stdin, one answer per line on
// stdout ({"err": ""} when done):
//
//	{"op":"run","name":"bee0","argv":[…],"dir":"…","log":"…","env":[…]}
//	{"op":"kill","name":"bee0"}   SIGKILL, as a crash
//	{"op":"stop","name":"bee0"}   SIGTERM, SIGKILL after 10 s
//	{"op":"start","name":"bee0"}  run again with the same arguments
//
// When stdin closes, every process is killed and netns exits.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

type command struct {
	Op   string   `json:"op"`
	Name string   `json:"name"`
	Argv []string `json:"argv,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	Log  string   `json:"log,omitempty"`
	Env  []string `json:"env,omitempty"`
}

type proc struct {
	spec command
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	mu    sync.Mutex
	procs = map[string]*proc{}
)

func main() {
	if err := loopbackUp(); err != nil {
		fatal(fmt.Errorf("bringing lo up: %w", err))
	}
	for i, arg := range os.Args[1:] {
		port, err := strconv.Atoi(arg)
		if err != nil {
			fatal(fmt.Errorf("port %q: %w", arg, err))
		}
		l, err := net.FileListener(os.NewFile(uintptr(3+i), "listener"))
		if err != nil {
			fatal(fmt.Errorf("inherited listener %d: %w", 3+i, err))
		}
		go forward(l, fmt.Sprintf("127.0.0.1:%d", port))
	}
	out := json.NewEncoder(os.Stdout)
	out.Encode(map[string]string{"err": ""}) // ready
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var c command
		err := json.Unmarshal(in.Bytes(), &c)
		if err == nil {
			err = handle(c)
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		out.Encode(map[string]string{"err": msg})
	}
	mu.Lock()
	for _, p := range procs {
		p.kill()
	}
	mu.Unlock()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "netns:", err)
	os.Exit(1)
}

func handle(c command) error {
	mu.Lock()
	defer mu.Unlock()
	p := procs[c.Name]
	switch c.Op {
	case "run":
		if p != nil && p.running() {
			return fmt.Errorf("%s is running", c.Name)
		}
		p = &proc{spec: c}
		procs[c.Name] = p
		return p.start()
	case "start":
		if p == nil {
			return fmt.Errorf("no process %s", c.Name)
		}
		if p.running() {
			return nil
		}
		return p.start()
	case "kill", "stop":
		if p == nil {
			return fmt.Errorf("no process %s", c.Name)
		}
		if c.Op == "stop" {
			p.term()
		}
		p.kill()
		return nil
	}
	return fmt.Errorf("unknown op %q", c.Op)
}

func (p *proc) start() error {
	logf, err := os.OpenFile(p.spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.spec.Argv[0], p.spec.Argv[1:]...)
	cmd.Dir = p.spec.Dir
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", p.spec.Name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); logf.Close(); close(done) }(p.done)
	return nil
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// term asks the process group to end and gives it 10 s.
func (p *proc) term() {
	if !p.running() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

func (p *proc) kill() {
	if !p.running() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// forward copies every connection accepted on l (a host loopback socket) to
// target inside the namespace.
func forward(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// loopbackUp sets IFF_UP on lo (a new namespace starts with lo down), with
// the same ioctl `ip link set lo up` uses, so no tool needs to be installed.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if err := ioctl(fd, syscall.SIOCGIFFLAGS, unsafe.Pointer(&ifr)); err != nil {
		return err
	}
	ifr.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	return ioctl(fd, syscall.SIOCSIFFLAGS, unsafe.Pointer(&ifr))
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}
