package export

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the progress goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressBar(t *testing.T) {
	from := time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)
	var out lockedBuffer
	p := startProgress(&out, from, from.AddDate(0, 0, 4))
	for range 7 {
		p.event()
	}
	p.night(from.AddDate(0, 0, 2))
	time.Sleep(3 * progressInterval)
	mid := out.String()
	if !strings.Contains(mid, " 50%") || !strings.Contains(mid, "7 events") || !strings.Contains(mid, "1 nights") {
		t.Errorf("progress half way: %q", mid)
	}
	p.stop(true)
	final := out.String()
	last := final[strings.LastIndexByte(strings.TrimSuffix(final, "\n"), '\r'):]
	if !strings.Contains(last, "100%") || !strings.HasSuffix(final, "\n") {
		t.Errorf("final progress line %q", last)
	}
}

// TestRunProgress: Run draws the bar where it is told to, and only there.
func TestRunProgress(t *testing.T) {
	src := &synthSource{devices: 2, nNights: 2, perNight: 10, start: time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)}
	var out lockedBuffer
	opt := Options{From: src.start, To: src.start.AddDate(0, 0, 2), Nights: DefaultNights(time.UTC), Pseudonyms: testPseudonyms(t), Progress: &out}
	if _, err := Run(t.Context(), src, t.TempDir()+"/out", []Format{FormatCSV}, opt); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "100%") || !strings.Contains(s, "40 events") || !strings.Contains(s, "4 nights") {
		t.Errorf("progress %q", s)
	}
}
