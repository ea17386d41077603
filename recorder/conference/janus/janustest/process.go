package janustest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envPublisher tells a test binary to run as a publisher process:
// "url|room|pin|display|freq".
const envPublisher = "JANUSTEST_PUBLISHER"

// RunPublisherProcess runs this process as a publisher and exits when the
// test binary was started by PublishProcess; otherwise it returns at once.
// Call it first in TestMain.
func RunPublisherProcess() {
	v := os.Getenv(envPublisher)
	if v == "" {
		return
	}
	f := strings.Split(v, "|")
	if len(f) != 5 {
		fmt.Fprintf(os.Stderr, "janustest: bad %s=%q\n", envPublisher, v)
		os.Exit(2)
	}
	freq, err := strconv.ParseFloat(f[4], 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "janustest: bad frequency %q\n", f[4])
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	p, err := publishTo(ctx, f[0], f[1], f[2], f[3], freq, "", false, "")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "janustest:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes our stdin
	p.Leave()
	os.Exit(0)
}

// PublishProcess is Publish in a child process (this test binary, whose
// TestMain calls RunPublisherProcess), so that the publisher's CPU is not
// this process's. It returns when the publisher has its media up; the child
// leaves and exits when the test ends.
func (s *Server) PublishProcess(t testing.TB, room, display string, freq float64) {
	t.Helper()
	s.mu.Lock()
	pin := s.pins[room]
	s.mu.Unlock()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%s|%g", envPublisher, s.URL, room, pin, display, freq))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill() // by its PID
			<-exited
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" {
				ok = true
				break
			}
		}
		ready <- ok
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("publisher process %s failed", display)
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("publisher process %s not ready within 25 s", display)
	}
}
