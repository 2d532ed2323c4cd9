package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/httpapi"
)

const testToken = "export-test-token"

// serveExport mounts the handler as the service does and returns the
// server's URL.
func serveExport(t *testing.T, cfg HandlerConfig) string {
	t.Helper()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(prometheus.NewRegistry(), testToken, slog.New(slog.DiscardHandler))
	api.HandleAuth("GET /api/v1/export/{table}", h)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, u string, token bool) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestHandlerServesWhatRunWrites: over HTTP, the simulated night's tables
// and EDF+ files are the same bytes as the files of Run, and the manifest
// comes in the trailer.
func TestHandlerServesWhatRunWrites(t *testing.T) {
	sn := simulated(t)
	opt := simOptions(t, sn, false, false)
	dir := filepath.Join(t.TempDir(), "out")
	m, err := Run(t.Context(), NewInfluxSource(sn.influx), dir, []Format{FormatCSV, FormatJSONL, FormatEDF}, opt)
	if err != nil {
		t.Fatal(err)
	}
	base := serveExport(t, HandlerConfig{
		Source: NewInfluxSource(sn.influx), Pseudonyms: testPseudonyms(t), Nights: DefaultNights(time.UTC),
		Version: "test", Now: opt.Now, TempDir: t.TempDir(),
	})
	params := url.Values{
		"from": {opt.From.Format(time.RFC3339)}, "to": {opt.To.Format(time.RFC3339)}, "tz": {"Europe/Berlin"},
		"window_before": {"2s"}, "window_after": {"1.5"},
	}
	if resp := get(t, base+"/api/v1/export/events?"+params.Encode(), false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %s, want 401", resp.Status)
	}
	for _, tc := range []struct{ table, format string }{
		{"events", "csv"}, {"nights", "csv"}, {"envelope", "csv"}, {"events", "jsonl"}, {"envelope", "jsonl"},
	} {
		p := url.Values{"format": {tc.format}}
		for k, v := range params {
			p[k] = v
		}
		resp := get(t, base+"/api/v1/export/"+tc.table+"?"+p.Encode(), true)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s.%s: %s %v: %s", tc.table, tc.format, resp.Status, err, body)
		}
		want, err := os.ReadFile(filepath.Join(dir, tc.table+"."+tc.format))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, want) {
			t.Errorf("%s.%s over HTTP (%d bytes) differs from the file (%d bytes)", tc.table, tc.format, len(body), len(want))
		}
		var hm Manifest
		if err := json.Unmarshal([]byte(resp.Trailer.Get("X-Crampwatch-Manifest")), &hm); err != nil {
			t.Fatalf("%s.%s: trailer manifest: %v", tc.table, tc.format, err)
		}
		if tc.table == TableEvents && hm.Rows.Events != m.Rows.Events {
			t.Errorf("trailer manifest counts %d events, want %d", hm.Rows.Events, m.Rows.Events)
		}
		if ct := resp.Header.Get("Content-Type"); ct != Format(tc.format).ContentType() {
			t.Errorf("%s.%s: Content-Type %q", tc.table, tc.format, ct)
		}
	}

	// EDF+: a zip of the same files, and the manifest.
	resp := get(t, base+"/api/v1/export/edf?"+params.Encode(), true)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("edf: %s %v: %s", resp.Status, err, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	edfs := 0
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if zf.Name == "manifest.json" {
			var zm Manifest
			if err := json.Unmarshal(got, &zm); err != nil || zm.EDFFiles != m.EDFFiles || len(zm.Files) != int(m.EDFFiles) {
				t.Errorf("zip manifest %s: %v", got, err)
			}
			continue
		}
		want, err := os.ReadFile(filepath.Join(dir, zf.Name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("zip entry %s differs from the file Run wrote (%v)", zf.Name, err)
		}
		edfs++
	}
	if edfs != int(m.EDFFiles) || edfs == 0 {
		t.Errorf("zip holds %d EDF+ files, want %d", edfs, m.EDFFiles)
	}
}

// TestHandlerStreams: the first rows reach the client while the export is
// still running, so memory does not hold the response. The source stops
// after some nights until the client has seen the beginning of the table.
func TestHandlerStreams(t *testing.T) {
	release := make(chan struct{})
	src := &synthSource{devices: 10, nNights: 2, perNight: 2000, start: time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC),
		after: func(n int) {
			if n == 5 {
				<-release
			}
		}}
	base := serveExport(t, HandlerConfig{Source: src, Pseudonyms: testPseudonyms(t), Nights: DefaultNights(time.UTC)})
	resp := get(t, base+"/api/v1/export/events?from=2025-01-01&to=2025-01-02", true)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s", resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	first := make(chan error, 1)
	go func() {
		_, err := br.Peek(4096)
		first <- err
	}()
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("no byte of the table arrived while the export was running: the response is buffered")
	}
	close(release)
	lines := 0
	sc := bufio.NewScanner(br)
	for sc.Scan() {
		lines++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if want := 1 + 10*2*2000; lines != want {
		t.Errorf("%d lines, want %d", lines, want)
	}
}

// TestHandlerAbortsOnFailure: a source failing after the response started
// breaks the transfer instead of ending it like a complete file; one
// failing before any byte gives a 502.
func TestHandlerAbortsOnFailure(t *testing.T) {
	start := time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		failAfter int
	}{{"mid-stream", 8}, {"before the first byte", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			src := &synthSource{devices: 10, nNights: 1, perNight: 1000, start: start, failAfter: tc.failAfter}
			if tc.failAfter == 1 {
				src.perNight = 2
			}
			base := serveExport(t, HandlerConfig{Source: src, Pseudonyms: testPseudonyms(t), Nights: DefaultNights(time.UTC)})
			resp := get(t, base+"/api/v1/export/events?from=2025-01-01&to=2025-01-02", true)
			defer resp.Body.Close()
			_, err := io.ReadAll(resp.Body)
			if tc.failAfter == 1 {
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Disposition") != "" {
					t.Errorf("%s, Content-Disposition %q; want 502 without an attachment", resp.Status, resp.Header.Get("Content-Disposition"))
				}
				return
			}
			if resp.StatusCode != http.StatusOK || err == nil {
				t.Errorf("status %s, read error %v: want 200 and a broken transfer", resp.Status, err)
			}
		})
	}
}

func TestHandlerRefusesBadRequests(t *testing.T) {
	src := &synthSource{devices: 1, nNights: 1, perNight: 10, start: time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)}
	base := serveExport(t, HandlerConfig{Source: src, Pseudonyms: testPseudonyms(t), Nights: DefaultNights(time.UTC)})
	tests := []struct {
		path string
		code int
	}{
		{"/api/v1/export/events", http.StatusBadRequest},
		{"/api/v1/export/events?from=2025-01-01&format=xlsx", http.StatusBadRequest},
		{"/api/v1/export/events?from=2025-01-01&kind=spasm", http.StatusBadRequest},
		{"/api/v1/export/events?from=2025-01-01&device=a%2Fb", http.StatusBadRequest},
		{"/api/v1/export/events?from=2025-01-01&tz=Mars/Olympus", http.StatusBadRequest},
		{"/api/v1/export/events?from=2025-01-01&include_device=maybe", http.StatusBadRequest},
		{"/api/v1/export/envelope?from=2025-01-01", http.StatusBadRequest},
		{"/api/v1/export/secrets?from=2025-01-01", http.StatusNotFound},
		{"/api/v1/export/events?from=2025-01-01&to=2025-01-01", http.StatusOK},
	}
	for _, tc := range tests {
		resp := get(t, base+tc.path, true)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s: %s, want %d", tc.path, resp.Status, tc.code)
		}
	}
}

// TestHandlerLimitsConcurrency: exports beyond MaxConcurrent get 429.
func TestHandlerLimitsConcurrency(t *testing.T) {
	holding, release := make(chan struct{}), make(chan struct{})
	var blocked atomic.Bool
	src := &synthSource{devices: 2, nNights: 1, perNight: 10, start: time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC),
		after: func(n int) {
			if n == 1 && blocked.CompareAndSwap(false, true) {
				close(holding)
				<-release
			}
		}}
	base := serveExport(t, HandlerConfig{Source: src, Pseudonyms: testPseudonyms(t), Nights: DefaultNights(time.UTC), MaxConcurrent: 1})
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/export/events?from=2025-01-01&to=2025-01-02", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the first export did not start")
	}
	resp := get(t, base+"/api/v1/export/nights?from=2025-01-01&to=2025-01-02", true)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(release)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second export: %s, want 429 with Retry-After", resp.Status)
	}
	if code := <-first; code != http.StatusOK {
		t.Errorf("first export: %d, want 200", code)
	}
}
