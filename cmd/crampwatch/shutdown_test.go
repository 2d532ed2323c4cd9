package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/journal"
	"github.com/crampwatch/crampwatch/mqttclient"
)

// buildBinary builds crampwatch into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "crampwatch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProcess is "crampwatch serve" running as a child process.
type serveProcess struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	http   string
	done   chan error
}

func startServe(t *testing.T, bin string, args ...string) *serveProcess {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{stderr: &bytes.Buffer{}, http: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--http-addr", p.http}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", p.stderr.String())
		}
	})
	return p
}

// metric returns the sum of the series of a metric on /metrics whose
// labels contain match (e.g. `stream="emg"`; empty: all).
func (p *serveProcess) metric(name, match string) (float64, error) {
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if match != "" && !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, sc.Err()
}

// waitReady waits for /readyz to answer 200.
func (p *serveProcess) waitReady(ctx context.Context, t *testing.T) {
	t.Helper()
	for {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("serve never became ready")
		case err := <-p.done:
			t.Fatalf("serve exited early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// terminate sends SIGTERM and returns the exit code and how long the
// process took to exit, failing t if it took longer than limit.
func (p *serveProcess) terminate(t *testing.T, limit time.Duration) (int, time.Duration) {
	t.Helper()
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		took := time.Since(began)
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, took
		case errors.As(err, &ee):
			return ee.ExitCode(), took
		}
		t.Fatalf("wait: %v", err)
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("serve did not exit within %v of SIGTERM", limit)
	}
	return -1, 0
}

// TestGracefulShutdown runs the real binary: "crampwatch serve" against
// real Mosquitto with a journal; a simulated stretch of night with cramps
// is published; as soon as the service has taken every frame from the
// broker it gets SIGTERM. It must exit 0 within the shutdown timeout, with
// every cramp of the night in the journal (ongoing and ended, complete
// lines) and the detector state saved.
func TestGracefulShutdown(t *testing.T) {
	bin := buildBinary(t)
	mqttURL := testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	journalPath := filepath.Join(dir, "journal.jsonl")
	const timeout = 5 * time.Second
	p := startServe(t, bin, "--mqtt-url", mqttURL, "--mqtt-client-id", fmt.Sprintf("crampwatch-shutdown-%d", os.Getpid()),
		"--journal", journalPath, "--state-dir", filepath.Join(dir, "state"), "--shutdown-timeout", timeout.String(),
		"--log-level", "info")
	p.waitReady(ctx, t)

	sc := firmwaresim.DefaultScenario().WithHours(12.0 / 60)
	sc.Encoding = "binary"
	sc.Cramps.PerNight = 0
	sc.Cramps.EveryS = 150
	sc.Cramps.DurationS = firmwaresim.Range{15, 40}
	sc.Transport.LossProb, sc.Transport.DupProb = 0, 0
	run := firmwaresim.RunConfig{Devices: 2, Seed: 11, Speed: 0, Scenario: sc,
		Start: time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Minute), DevicePrefix: fmt.Sprintf("sd%d-", os.Getpid()%100000)}
	pub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: mqttURL, ClientID: fmt.Sprintf("shutdown-sim-%d", os.Getpid()), CleanSession: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(time.Second)
	stats, err := firmwaresim.Run(ctx, run, pub)
	if err != nil {
		t.Fatal(err)
	}
	// SIGTERM as soon as every frame is in the service (delivered, or a
	// retained status of an earlier test): its queues and sinks still hold
	// work.
	for {
		got, err := p.metric("crampwatch_ingest_frames_total", "")
		if err != nil {
			t.Fatal(err)
		}
		if got >= float64(stats.Frames) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("serve took %v of %d frames", got, stats.Frames)
		case <-time.After(10 * time.Millisecond):
		}
	}
	code, took := p.terminate(t, timeout+5*time.Second)
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(p.stderr.String(), "shutdown complete: sinks flushed") {
		t.Errorf("serve did not report a complete shutdown")
	}
	t.Logf("exited %d in %v after SIGTERM", code, took.Round(time.Millisecond))

	raw, err := os.ReadFile(journalPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		t.Errorf("journal does not end with a complete line")
	}
	events, err := journal.Read(journalPath)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	var truths int
	for i := range run.Devices {
		for _, tr := range run.Device(i).Truth() {
			if tr.Kind != "cramp" {
				continue
			}
			truths++
			found := false
			for _, e := range events {
				if e.Kind == detect.KindCramp && e.State == detect.StateEnded && e.Device == tr.Device &&
					e.Channel.Side.String() == tr.Side && e.Onset.Before(tr.End) && e.End.After(tr.Onset) {
					found = true
				}
			}
			if !found {
				t.Errorf("cramp %s %s at %s not ended in the journal", tr.Device, tr.Side, tr.Onset.Format(time.TimeOnly))
			}
		}
	}
	if truths == 0 {
		t.Fatal("the scenario has no cramp")
	}
	// Retained status messages of other tests' devices reach the service
	// too, but only devices that sent frames have a state.
	states, _ := filepath.Glob(filepath.Join(dir, "state", "*.json"))
	if len(states) != run.Devices {
		t.Errorf("%d state files, want %d", len(states), run.Devices)
	}
	t.Logf("%d events in the journal, %d truth cramps", len(events), truths)
}

// TestShutdownBoundedWhenSinkStalls: with InfluxDB unreachable the sink
// cannot flush, and SIGTERM still ends the process within
// --shutdown-timeout (plus the disconnects), reporting the incomplete
// flush with a non-zero exit code.
func TestShutdownBoundedWhenSinkStalls(t *testing.T) {
	bin := buildBinary(t)
	mqttURL := testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dead, err := testenv.FreePort() // nothing listens here
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	p := startServe(t, bin, "--mqtt-url", mqttURL, "--mqtt-client-id", fmt.Sprintf("crampwatch-stall-%d", os.Getpid()),
		"--influx-url", fmt.Sprintf("http://127.0.0.1:%d", dead), "--influx-bucket", "db/autogen",
		"--shutdown-timeout", timeout.String(), "--log-level", "info")
	// Not ready (InfluxDB is down), but serving: wait for /healthz.
	for {
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("serve never answered /healthz")
		case <-time.After(50 * time.Millisecond):
		}
	}
	pub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: mqttURL, ClientID: fmt.Sprintf("stall-sim-%d", os.Getpid()), CleanSession: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(time.Second)
	sc := firmwaresim.DefaultScenario().WithHours(2.0 / 60)
	run := firmwaresim.RunConfig{Devices: 1, Seed: 3, Speed: 0, Scenario: sc, Start: time.Now().Add(-time.Hour),
		DevicePrefix: fmt.Sprintf("st%d-", os.Getpid()%100000)}
	if _, err := firmwaresim.Run(ctx, run, pub); err != nil {
		t.Fatal(err)
	}
	for {
		if n, _ := p.metric("crampwatch_sink_queue_depth", `sink="influxdb"`); n > 0 {
			break // points are waiting for the database that is not there
		}
		select {
		case <-ctx.Done():
			t.Fatal("nothing queued for InfluxDB")
		case <-time.After(20 * time.Millisecond):
		}
	}
	code, took := p.terminate(t, timeout+3*time.Second)
	t.Logf("exited %d in %v after SIGTERM with InfluxDB down", code, took.Round(time.Millisecond))
	if code == 0 && !strings.Contains(p.stderr.String(), "spool") {
		t.Errorf("exit code 0 although points could not be written and there is no spool")
	}
}
