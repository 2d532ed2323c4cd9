package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testChunk builds a sealed chunk of line protocol lines, counting lines
// per measurement as the queue does.
func testChunk(lines ...string) *chunk {
	ch := &chunk{counts: map[string]int{}, sealed: true}
	for _, l := range lines {
		ch.buf = append(ch.buf, l...)
		ch.buf = append(ch.buf, '\n')
		ch.lines++
		ch.counts[l[:strings.IndexAny(l, ", ")]]++
	}
	return ch
}

func openTestSpool(t *testing.T, dir string, maxBytes int64) *spool {
	t.Helper()
	sp, err := openSpool(dir, maxBytes, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.close)
	return sp
}

// drainSpool pops every record of cls and returns their line protocol.
func drainSpool(t *testing.T, sp *spool, cls int) []string {
	t.Helper()
	var out []string
	for !sp.empty(cls) {
		_, lines, err := sp.head(cls)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(lines))
		sp.pop(cls)
	}
	return out
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+spoolExt))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range segmentFiles(t, dir) {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// TestSpoolFileFormat decodes a segment byte by byte as docs describe it,
// independently of the spool's own reader.
func TestSpoolFileFormat(t *testing.T) {
	dir := t.TempDir()
	sp := openTestSpool(t, dir, 1<<20)
	ch := testChunk("events,device=d1 state=\"ended\" 1", "envelope,device=d1 rms_uv=1 2", "events,device=d1 state=\"ongoing\" 3")
	if err := sp.append(classHigh, ch); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, dir)
	if want := []string{"high-0000000000000001.spool"}; !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, files[0]))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("segment mode %v, want 0600", st.Mode().Perm())
	}
	if string(b[:8]) != "CWSPOOL1" {
		t.Fatalf("magic %q", b[:8])
	}
	n := binary.LittleEndian.Uint32(b[8:12])
	sum := binary.LittleEndian.Uint32(b[12:16])
	payload := b[16:]
	if int(n) != len(payload) {
		t.Fatalf("length %d, payload has %d bytes", n, len(payload))
	}
	if got := crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)); got != sum {
		t.Errorf("crc32c %08x, header says %08x", got, sum)
	}
	// Counts, sorted by measurement: envelope 1, events 2; then the lines.
	want := []byte{2, 8}
	want = append(want, "envelope"...)
	want = append(want, 1, 6)
	want = append(want, "events"...)
	want = append(want, 2)
	want = append(want, ch.buf...)
	if !bytes.Equal(payload, want) {
		t.Errorf("payload\n got %q\nwant %q", payload, want)
	}
	if sp.size != int64(len(b)) || sp.size != dirBytes(t, dir) {
		t.Errorf("size %d, file has %d bytes", sp.size, len(b))
	}
}

// TestSpoolOrderAcrossSegmentsAndRestart appends more than a segment holds
// to both classes, reopens the directory as a restart does, and reads each
// class back in append order.
func TestSpoolOrderAcrossSegmentsAndRestart(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, 64<<10, slog.New(slog.DiscardHandler)) // 4 KiB segments
	if err != nil {
		t.Fatal(err)
	}
	var wantHigh, wantBulk []string
	pad := strings.Repeat("x", 300)
	for i := range 40 {
		h := testChunk(fmt.Sprintf("events,device=d1 n=%di,pad=\"%s\" %d", i, pad, i))
		b := testChunk(fmt.Sprintf("envelope,device=d1 rms_uv=%d %d", i, i), fmt.Sprintf("motion,device=d1 activity_g=%d %d", i, i))
		for _, a := range []struct {
			cls int
			ch  *chunk
		}{{classHigh, h}, {classBulk, b}} {
			if err := sp.append(a.cls, a.ch); err != nil {
				t.Fatal(err)
			}
		}
		wantHigh = append(wantHigh, string(h.buf))
		wantBulk = append(wantBulk, string(b.buf))
	}
	if n := len(sp.cls[classHigh].segs); n < 3 {
		t.Fatalf("%d high segments, want several", n)
	}
	if got := sp.lines(); got != 120 {
		t.Errorf("lines = %d, want 120", got)
	}
	// Replay part of the first high segment before the "crash".
	for range 5 {
		sp.pop(classHigh)
	}
	if len(sp.cls[classHigh].segs[0].recs) == 0 {
		t.Fatal("first segment replayed completely; the test wants it partly replayed")
	}
	wantHigh = wantHigh[5:]
	sp.close()
	files := segmentFiles(t, dir)
	var lastSeq uint64
	for _, f := range files {
		_, seq, _ := parseSegmentName(f)
		lastSeq = max(lastSeq, seq)
	}

	sp = openTestSpool(t, dir, 64<<10)
	// The partly replayed segment is read again from its start.
	if got := sp.lines(); got != 120 {
		t.Errorf("after restart lines = %d, want 120", got)
	}
	if sp.size != dirBytes(t, dir) {
		t.Errorf("size %d, files hold %d", sp.size, dirBytes(t, dir))
	}
	// Records of a partly replayed segment may come again (idempotent
	// overwrite), but never out of order: the ones popped from a segment
	// that still exists are back at the front.
	high := drainSpool(t, sp, classHigh)
	if k := len(high) - len(wantHigh); k < 0 || !slices.Equal(high[k:], wantHigh) {
		t.Errorf("high after restart: %d records, want %d in order (plus replayed ones)", len(high), len(wantHigh))
	}
	if bulk := drainSpool(t, sp, classBulk); !slices.Equal(bulk, wantBulk) {
		t.Errorf("bulk after restart: %d records, want %d in order", len(bulk), len(wantBulk))
	}
	if f := segmentFiles(t, dir); len(f) != 0 || sp.size != 0 {
		t.Errorf("after replay: files %v, size %d; want none, 0", f, sp.size)
	}
	// New segments continue the sequence: names keep sorting in write order.
	if err := sp.append(classBulk, testChunk("envelope,device=d1 rms_uv=1 1")); err != nil {
		t.Fatal(err)
	}
	if f := segmentFiles(t, dir); len(f) != 1 || f[0] != segmentName(classBulk, lastSeq+1) {
		t.Errorf("new segment %v does not continue the sequence", f)
	}
}

// TestSpoolDamagedTail writes three records, damages the segment as a
// crash or a disk fault would, and checks that a restart keeps what is
// intact, drops the rest, and appends after it cleanly.
func TestSpoolDamagedTail(t *testing.T) {
	recs := []*chunk{
		testChunk("events,device=d1 n=1i 1"),
		testChunk("events,device=d1 n=2i 2", "alerts,device=d1 level=1i 2"),
		testChunk("events,device=d1 n=3i 3"),
	}
	// Offsets of the records in the segment.
	var ends []int64
	{
		dir := t.TempDir()
		sp := openTestSpool(t, dir, 1<<20)
		for _, ch := range recs {
			if err := sp.append(classHigh, ch); err != nil {
				t.Fatal(err)
			}
			ends = append(ends, sp.size)
		}
	}
	third := ends[1]
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		keep   int // intact records
	}{
		{"intact", func(b []byte) []byte { return b }, 3},
		{"cut in the last header", func(b []byte) []byte { return b[:third+5] }, 2},
		{"cut in the last payload", func(b []byte) []byte { return b[:len(b)-3] }, 2},
		{"last payload bit flip", func(b []byte) []byte { b[len(b)-4] ^= 0x10; return b }, 2},
		{"length past the end", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[third:], 1<<30); return b }, 2},
		{"zeroed tail", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, 3},
		{"garbage tail", func(b []byte) []byte { return append(b, "\x05\x00\x00\x00abcdefghi"...) }, 3},
		{"second record damaged", func(b []byte) []byte { b[ends[0]+recHeaderSize+3] ^= 1; return b }, 1},
		{"header cut short", func(b []byte) []byte { return b[:5] }, 0},
		{"empty file", func(b []byte) []byte { return nil }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sp := openTestSpool(t, dir, 1<<20)
			for _, ch := range recs {
				if err := sp.append(classHigh, ch); err != nil {
					t.Fatal(err)
				}
			}
			path := sp.cls[classHigh].segs[0].path
			sp.close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}

			sp = openTestSpool(t, dir, 1<<20)
			if tc.keep == 0 {
				if !sp.empty(classHigh) || len(segmentFiles(t, dir)) != 0 {
					t.Errorf("unusable segment kept: %v", segmentFiles(t, dir))
				}
			} else if st, err := os.Stat(path); err != nil || st.Size() != ends[tc.keep-1] {
				t.Errorf("segment not truncated to its intact records: %v bytes, want %d (%v)", st.Size(), ends[tc.keep-1], err)
			}
			if sp.size != dirBytes(t, dir) {
				t.Errorf("size %d, files hold %d", sp.size, dirBytes(t, dir))
			}
			// An append after the restart is read after the intact records.
			last := testChunk("events,device=d1 n=4i 4")
			if err := sp.append(classHigh, last); err != nil {
				t.Fatal(err)
			}
			got := drainSpool(t, sp, classHigh)
			var want []string
			for _, ch := range recs[:tc.keep] {
				want = append(want, string(ch.buf))
			}
			want = append(want, string(last.buf))
			if !slices.Equal(got, want) {
				t.Errorf("records\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestSpoolForeignFileSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, segmentName(classBulk, 7))
	if err := os.WriteFile(path, []byte("CWSPOOL9 a later format"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("operator notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp := openTestSpool(t, dir, 1<<20)
	if !sp.empty(classBulk) || sp.size != 0 {
		t.Error("foreign segment loaded")
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("foreign segment not set aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("unrelated file touched: %v", err)
	}
	// A later segment must not reuse the set-aside file's sequence number.
	if err := sp.append(classBulk, testChunk("envelope,device=d1 rms_uv=1 1")); err != nil {
		t.Fatal(err)
	}
	if f := segmentFiles(t, dir); len(f) != 1 || f[0] != segmentName(classBulk, 8) {
		t.Errorf("files %v", f)
	}
}

// TestSpoolBound fills the spool to its bound and checks the bound is
// never passed, eviction frees whole segments, and sizes match the disk.
func TestSpoolBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 64 << 10
	sp := openTestSpool(t, dir, maxBytes)
	line := "envelope,channel=calf_left,device=d1 rms_uv=12.5,baseline_uv=3 " + strings.Repeat("1", 16)
	full := 0
	var appended int
	for range 2000 {
		err := sp.append(classBulk, testChunk(line, line, line, line, line))
		if errors.Is(err, errSpoolFull) {
			full++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		appended++
		if sp.size > maxBytes {
			t.Fatalf("size %d past the bound %d", sp.size, maxBytes)
		}
	}
	if full == 0 || appended == 0 {
		t.Fatalf("appended %d, refused %d: the bound was never reached", appended, full)
	}
	if sp.size != dirBytes(t, dir) {
		t.Errorf("size %d, files hold %d", sp.size, dirBytes(t, dir))
	}
	if got := sp.lines(); got != 5*appended {
		t.Errorf("lines %d, want %d", got, 5*appended)
	}
	before := sp.size
	segs := len(sp.cls[classBulk].segs)
	lost, ok := sp.evictOldest(classBulk)
	if !ok || lost["envelope"] == 0 || len(sp.cls[classBulk].segs) != segs-1 || sp.size >= before {
		t.Fatalf("evict: ok %v, lost %v, segments %d -> %d, size %d -> %d", ok, lost, segs, len(sp.cls[classBulk].segs), before, sp.size)
	}
	if got := sp.lines(); got != 5*appended-lost["envelope"] {
		t.Errorf("lines after eviction %d, want %d", got, 5*appended-lost["envelope"])
	}
	if err := sp.append(classHigh, testChunk("events,device=d1 n=1i 1")); err != nil {
		t.Errorf("no room after an eviction: %v", err)
	}
	if _, ok := sp.evictOldest(classHigh); !ok {
		t.Error("evict high: nothing")
	}
	if _, ok := sp.evictOldest(classHigh); ok {
		t.Error("evict of an empty class succeeded")
	}
}

func TestSpoolDirNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; use a path under a regular file instead.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		if _, err := openSpool(filepath.Join(f, "spool"), 1<<20, slog.New(slog.DiscardHandler)); err == nil {
			t.Error("spool under a regular file opened")
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("read-only spool directory accepted")
	}
}

func TestParseSegmentName(t *testing.T) {
	for _, tc := range []struct {
		name string
		cls  int
		seq  uint64
		ok   bool
	}{
		{"high-0000000000000001.spool", classHigh, 1, true},
		{"bulk-00000000000000ff.spool", classBulk, 255, true},
		{"bulk-00000000000000ff.spool.bad", 0, 0, false},
		{"bulk-ff.spool", 0, 0, false},
		{"low-0000000000000001.spool", 0, 0, false},
		{"high-000000000000000g.spool", 0, 0, false},
	} {
		cls, seq, ok := parseSegmentName(tc.name)
		if ok != tc.ok || cls != tc.cls || seq != tc.seq {
			t.Errorf("%s: %d %d %v, want %d %d %v", tc.name, cls, seq, ok, tc.cls, tc.seq, tc.ok)
		}
	}
	if got := segmentName(classHigh, 26); got != "high-000000000000001a.spool" {
		t.Errorf("segmentName = %s", got)
	}
}

// FuzzSpoolScan feeds arbitrary segment bodies to the start-up scan: it
// must never panic, never claim bytes past the end, and every record it
// accepts must decode to lines that match their counts.
func FuzzSpoolScan(f *testing.F) {
	sp := &spool{crc: crc32.MakeTable(crc32.Castagnoli)}
	good := func(lines ...string) []byte {
		ch := testChunk(lines...)
		payload := binary.AppendUvarint(nil, uint64(len(ch.counts)))
		names := make([]string, 0, len(ch.counts))
		for m := range ch.counts {
			names = append(names, m)
		}
		slices.Sort(names)
		for _, m := range names {
			payload = binary.AppendUvarint(payload, uint64(len(m)))
			payload = append(payload, m...)
			payload = binary.AppendUvarint(payload, uint64(ch.counts[m]))
		}
		payload = append(payload, ch.buf...)
		rec := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
		rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(payload, sp.crc))
		return append(rec, payload...)
	}
	a := good("events,device=d1 n=1i 1", "alerts,device=d1 level=1i 2")
	b := good("envelope,device=d1 rms_uv=1 2")
	f.Add(append(append([]byte{}, a...), b...))
	f.Add(a[:len(a)-1])
	f.Add(make([]byte, 64))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		size := spoolHeaderSize + int64(len(body))
		recs, end, err := sp.scanRecords(bytes.NewReader(body), spoolHeaderSize, size)
		if end > size || end < spoolHeaderSize || (err == nil && end != size) {
			t.Fatalf("scan ended at %d of %d (err %v)", end, size, err)
		}
		off := spoolHeaderSize
		for _, r := range recs {
			if r.off != off {
				t.Fatalf("record at %d, want %d", r.off, off)
			}
			p := body[r.off-spoolHeaderSize+recHeaderSize : r.off-spoolHeaderSize+recHeaderSize+int64(r.size)]
			lines := p[r.data:]
			if bytes.Count(lines, []byte{'\n'}) != r.lines || r.lines <= 0 {
				t.Fatalf("record with %d lines counted %d", bytes.Count(lines, []byte{'\n'}), r.lines)
			}
			sum := 0
			for _, mc := range r.counts {
				sum += mc.n
			}
			if sum != r.lines {
				t.Fatalf("counts %v do not add up to %d lines", r.counts, r.lines)
			}
			off += recHeaderSize + int64(r.size)
		}
		if off != end {
			t.Fatalf("records end at %d, scan says %d", off, end)
		}
	})
}

// FuzzSpoolPayload decodes arbitrary payloads (past the checksum): no
// panic, and an accepted payload's counts add up to its lines.
func FuzzSpoolPayload(f *testing.F) {
	f.Add([]byte("\x01\x06events\x01events,device=d1 n=1i 1\n"))
	f.Add([]byte("\x02\x08envelope\x01\x06events\x02a 1\nb 2\nc 3\n"))
	f.Add([]byte("\x00"))
	f.Add([]byte("\x01\x06events\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, p []byte) {
		rec, err := parsePayload(p)
		if err != nil {
			return
		}
		if rec.data > len(p) || rec.size != len(p) || rec.lines <= 0 {
			t.Fatalf("record %+v of a %d-byte payload", rec, len(p))
		}
		sum := 0
		for _, mc := range rec.counts {
			if mc.meas == "" || mc.n <= 0 {
				t.Fatalf("count %+v", mc)
			}
			sum += mc.n
		}
		if sum != rec.lines || bytes.Count(p[rec.data:], []byte{'\n'}) != rec.lines {
			t.Fatalf("counts %v, lines %d", rec.counts, rec.lines)
		}
	})
}

// BenchmarkSpoolAppendReplay spools full batches of envelope points (5000
// lines, the default BatchSize) and reads them back, fsync included, as an
// outage and its replay do. Reported as points/s through the spool.
func BenchmarkSpoolAppendReplay(b *testing.B) {
	sp, err := openSpool(b.TempDir(), 1<<30, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer sp.close()
	ch := &chunk{counts: map[string]int{}, sealed: true}
	for i := range 5000 {
		e := envelopeAt(i)
		if ch.buf, err = appendEnvelope(ch.buf, &e); err != nil {
			b.Fatal(err)
		}
		ch.lines++
		ch.counts[MeasurementEnvelope]++
	}
	b.SetBytes(int64(len(ch.buf)))
	b.ResetTimer()
	for range b.N {
		if err := sp.append(classBulk, ch); err != nil {
			b.Fatal(err)
		}
		if _, lines, err := sp.head(classBulk); err != nil || len(lines) != len(ch.buf) {
			b.Fatalf("read back %d bytes: %v", len(lines), err)
		}
		sp.pop(classBulk)
	}
	b.ReportMetric(float64(b.N*ch.lines)/b.Elapsed().Seconds(), "points/s")
}

func TestSpoolDirLocked(t *testing.T) {
	dir := t.TempDir()
	sp := openTestSpool(t, dir, 1<<20)
	if other, err := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler)); err == nil {
		other.close()
		t.Fatal("a second spool opened the same directory")
	}
	sp.close()
	again, err := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("directory still locked after close: %v", err)
	}
	again.close()
}
