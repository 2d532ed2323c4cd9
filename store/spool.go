package store

// The spool is the durable, on-disk part of the InfluxDB queue. A batch the
// server did not take (down, unreachable, overloaded) is appended to it,
// and from then on everything of that priority class goes through the spool
// until the spool has been replayed: the order of writes per class is the
// order of detection, so a cramp's "ongoing" point can never overwrite its
// "ended" one. Replaying a record twice (a crash after the write, before
// the record was let go) is harmless because InfluxDB overwrites a point
// with the same measurement, tags and timestamp.
//
// Layout: one directory, locked by one process at a time (file LOCK, flock),
// holding segment files named
// "<class>-<sequence, 16 hex digits>.spool", class "high" (events, alert
// records) or "bulk" (envelope, motion, device health). Sequence numbers
// grow across both classes and restarts, so file names sort in write
// order. A segment is:
//
//	magic "CWSPOOL1" (8 bytes)
//	record*
//
// and a record, integers little-endian:
//
//	uint32 length of the payload
//	uint32 CRC-32C (Castagnoli) of the payload
//	payload:
//	  uvarint number of measurements (at least 1)
//	  per measurement: uvarint name length, name, uvarint lines of it
//	  the batch in line protocol, '\n'-terminated lines, as sent to InfluxDB
//
// A record is appended with one write and then fsynced, so a crash can only
// leave the last record of a segment cut short or a segment without its
// header. At start-up every segment is scanned: it is used up to its first
// record that is cut short, fails its checksum or does not parse (a zeroed
// tail, as some file systems leave after a crash, fails the "at least one
// measurement" check); the rest is logged and truncated away. A segment is
// deleted once all its records are written, and the directory is fsynced
// so a deleted segment cannot come back and be replayed over newer data.
//
// The spool is bounded by its size on disk (segment files, headers
// included). When a record does not fit, the caller decides: a bulk record
// is dropped, and a high record evicts the oldest bulk segments first, so
// that envelope, motion and health points always go before events.
//
// A spool is used by one goroutine at a time (New, then the sink's writer).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	spoolMagic      = "CWSPOOL1"
	spoolHeaderSize = int64(len(spoolMagic))
	recHeaderSize   = 8
	spoolExt        = ".spool"
	spoolLockName   = "LOCK"
	// Segment size: a sixteenth of the bound, so evicting a bulk segment
	// frees a useful but small part of the spool, within limits that keep
	// the number of files and the size of one eviction reasonable.
	minSegment = 4 << 10
	maxSegment = 64 << 20
	// maxRecordCounts bounds the measurements one record may name; a batch
	// holds a handful, so more means a damaged record.
	maxRecordCounts = 1 << 12
)

// errSpoolFull is returned by spool.append when the record does not fit.
var errSpoolFull = errors.New("spool full")

// classNames are the file name prefixes of the queue classes, by class id.
var classNames = [numClasses]string{classHigh: "high", classBulk: "bulk"}

// measCount is the number of lines of one measurement in a record.
type measCount struct {
	meas string
	n    int
}

// spoolRecord locates one record that has not been written yet.
type spoolRecord struct {
	off    int64 // offset of the record header in its segment
	size   int   // payload bytes
	data   int   // offset of the line protocol within the payload
	lines  int
	counts []measCount
}

// segment is one spool file; it holds at least one unwritten record.
type segment struct {
	path   string
	f      *os.File // read and written at explicit offsets
	size   int64    // bytes in the file
	recs   []spoolRecord
	sealed bool // no more appends: from before a restart, or a write failed
}

type spoolClass struct {
	segs  []*segment // oldest first; only the last one is appended to
	lines int        // lines in unwritten records
}

type spool struct {
	dir    string
	lock   *os.File // held open: the directory's lock
	max    int64    // bound on size
	segMax int64    // a segment takes no more records past this size
	size   int64    // bytes of all segment files
	seq    uint64
	cls    [numClasses]spoolClass
	crc    *crc32.Table
	buf    []byte   // record header being appended, or record read back
	names  []string // measurement names of the record being appended, sorted
	log    *slog.Logger
}

// openSpool opens (creating it if need be) the spool directory and loads
// the segments a previous run left, oldest first.
func openSpool(dir string, maxBytes int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	// Creating the lock file also finds out now, not during the first
	// outage, whether we can write here.
	lock, err := lockSpoolDir(dir)
	if err != nil {
		return nil, err
	}
	sp := &spool{
		dir:    dir,
		lock:   lock,
		max:    maxBytes,
		segMax: min(max(maxBytes/16, minSegment), maxSegment),
		crc:    crc32.MakeTable(crc32.Castagnoli),
		log:    log,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		sp.close()
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	type found struct {
		cls  int
		seq  uint64
		name string
	}
	var files []found
	for _, e := range entries {
		if cls, seq, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, found{cls, seq, e.Name()})
		}
	}
	slices.SortFunc(files, func(a, b found) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for _, f := range files {
		sp.seq = max(sp.seq, f.seq)
		seg, err := sp.load(filepath.Join(dir, f.name))
		if err != nil {
			sp.close()
			return nil, err
		}
		if seg == nil {
			continue
		}
		c := &sp.cls[f.cls]
		c.segs = append(c.segs, seg)
		for _, r := range seg.recs {
			c.lines += r.lines
		}
		sp.size += seg.size
	}
	return sp, nil
}

func segmentName(cls int, seq uint64) string {
	return fmt.Sprintf("%s-%016x%s", classNames[cls], seq, spoolExt)
}

func parseSegmentName(name string) (cls int, seq uint64, ok bool) {
	for c, prefix := range classNames {
		rest, found := strings.CutPrefix(name, prefix+"-")
		if !found {
			continue
		}
		hex, found := strings.CutSuffix(rest, spoolExt)
		if !found || len(hex) != 16 {
			return 0, 0, false
		}
		n, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			return 0, 0, false
		}
		return c, n, true
	}
	return 0, 0, false
}

// load scans one segment left by a previous run. It returns nil (and
// removes the file) if nothing in it can be used; a damaged tail is logged
// and truncated away. Only I/O errors are returned.
func (sp *spool) load(path string) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	size := st.Size()
	r := bufio.NewReaderSize(f, 64<<10)
	var magic [spoolHeaderSize]byte
	n, _ := io.ReadFull(r, magic[:])
	if string(magic[:n]) != spoolMagic[:n] {
		// Not a segment of this format (another version, or damage at the
		// very start): keep it for a human, out of the way and the bound.
		f.Close()
		sp.log.Error("InfluxDB spool: file is not a spool segment; renamed, not replayed",
			"file", path, "bytes", size)
		if err := os.Rename(path, path+".bad"); err != nil {
			return nil, fmt.Errorf("store: spool: %w", err)
		}
		return nil, nil
	}
	seg := &segment{path: path, f: f, sealed: true}
	off := int64(n)
	if n == len(spoolMagic) {
		seg.recs, off, err = sp.scanRecords(r, off, size)
		if err != nil {
			sp.log.Warn("InfluxDB spool: damaged or cut-short record, the rest of the segment is lost",
				"file", path, "offset", off, "bytes_lost", size-off, "err", err)
		}
	}
	if len(seg.recs) == 0 {
		f.Close()
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("store: spool: %w", err)
		}
		return nil, nil
	}
	if off < size {
		if err := f.Truncate(off); err != nil {
			f.Close()
			return nil, fmt.Errorf("store: spool: truncate damaged tail: %w", err)
		}
	}
	seg.size = off
	return seg, nil
}

// scanRecords reads records from r, which holds the segment from offset
// off to size. It returns the valid records and the offset where they end;
// err says why the scan stopped before size.
func (sp *spool) scanRecords(r io.Reader, off, size int64) ([]spoolRecord, int64, error) {
	var recs []spoolRecord
	for off < size {
		rec, err := sp.readRecord(r, off, size)
		if err != nil {
			return recs, off, err
		}
		recs = append(recs, rec)
		off += recHeaderSize + int64(rec.size)
	}
	return recs, off, nil
}

// readRecord reads the record at off from r, which is positioned there.
func (sp *spool) readRecord(r io.Reader, off, fileSize int64) (spoolRecord, error) {
	var h [recHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return spoolRecord{}, errors.New("record header cut short")
	}
	n := int64(binary.LittleEndian.Uint32(h[0:4]))
	if n > fileSize-off-recHeaderSize {
		return spoolRecord{}, fmt.Errorf("record of %d bytes cut short", n)
	}
	sp.buf = slices.Grow(sp.buf[:0], int(n))[:n]
	if _, err := io.ReadFull(r, sp.buf); err != nil {
		return spoolRecord{}, fmt.Errorf("record cut short: %w", err)
	}
	if crc32.Checksum(sp.buf, sp.crc) != binary.LittleEndian.Uint32(h[4:8]) {
		return spoolRecord{}, errors.New("checksum mismatch")
	}
	rec, err := parsePayload(sp.buf)
	rec.off = off
	return rec, err
}

// parsePayload decodes the measurement counts of a record's payload and
// checks them against its lines.
func parsePayload(p []byte) (spoolRecord, error) {
	bad := func(what string) (spoolRecord, error) { return spoolRecord{}, errors.New("bad record: " + what) }
	nm, k := binary.Uvarint(p)
	if k <= 0 || nm == 0 || nm > maxRecordCounts {
		return bad("measurement count")
	}
	pos := k
	rec := spoolRecord{size: len(p), counts: make([]measCount, 0, nm)}
	for range nm {
		l, k := binary.Uvarint(p[pos:])
		if k <= 0 || l == 0 || l > uint64(len(p)-pos-k) {
			return bad("measurement name")
		}
		pos += k
		name := string(p[pos : pos+int(l)])
		pos += int(l)
		c, k := binary.Uvarint(p[pos:])
		if k <= 0 || c == 0 || c > uint64(len(p)) {
			return bad("line count")
		}
		pos += k
		rec.counts = append(rec.counts, measCount{name, int(c)})
		rec.lines += int(c)
	}
	rec.data = pos
	body := p[pos:]
	if len(body) == 0 || body[len(body)-1] != '\n' || bytes.Count(body, []byte{'\n'}) != rec.lines {
		return bad("lines do not match their count")
	}
	return rec, nil
}

// empty reports whether class cls has nothing to replay.
func (sp *spool) empty(cls int) bool { return len(sp.cls[cls].segs) == 0 }

// lines returns the number of unwritten lines in the spool.
func (sp *spool) lines() int {
	n := 0
	for i := range sp.cls {
		n += sp.cls[i].lines
	}
	return n
}

// append adds ch as one record at the end of class cls and syncs it to
// disk. It returns errSpoolFull if the record would take the spool past
// its bound; nothing is written then.
func (sp *spool) append(cls int, ch *chunk) error {
	sp.names = sp.names[:0]
	for m := range ch.counts {
		sp.names = append(sp.names, m)
	}
	slices.Sort(sp.names)
	hdr := append(sp.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0) // length and checksum, filled in below
	hdr = binary.AppendUvarint(hdr, uint64(len(sp.names)))
	counts := make([]measCount, 0, len(sp.names))
	for _, m := range sp.names {
		hdr = binary.AppendUvarint(hdr, uint64(len(m)))
		hdr = append(hdr, m...)
		hdr = binary.AppendUvarint(hdr, uint64(ch.counts[m]))
		counts = append(counts, measCount{m, ch.counts[m]})
	}
	sp.buf = hdr
	payload := len(hdr) - recHeaderSize + len(ch.buf)
	if payload > math.MaxUint32 {
		return fmt.Errorf("store: spool: batch of %d bytes too large for a record", payload)
	}
	recSize := int64(recHeaderSize + payload)

	c := &sp.cls[cls]
	var seg *segment
	if n := len(c.segs); n > 0 && !c.segs[n-1].sealed && c.segs[n-1].size+recSize <= sp.segMax {
		seg = c.segs[n-1]
	}
	need := recSize
	if seg == nil {
		need += spoolHeaderSize
	}
	if sp.size+need > sp.max {
		return errSpoolFull
	}
	crc := crc32.Update(crc32.Checksum(hdr[recHeaderSize:], sp.crc), sp.crc, ch.buf)
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(payload))
	binary.LittleEndian.PutUint32(hdr[4:8], crc)

	created := seg == nil
	if created {
		var err error
		if seg, err = sp.create(cls); err != nil {
			return err
		}
	}
	off := seg.size
	_, err := seg.f.WriteAt(hdr, off)
	if err == nil {
		_, err = seg.f.WriteAt(ch.buf, off+int64(len(hdr)))
	}
	if err == nil {
		err = seg.f.Sync()
	}
	if err != nil {
		// Take the partial record back, and append nothing more to this
		// file in case that failed too: the start-up scan stops there.
		seg.f.Truncate(off)
		seg.sealed = true
		if created {
			sp.removeHead(cls, len(c.segs)-1)
		}
		return fmt.Errorf("store: spool: write %s: %w", seg.path, err)
	}
	seg.recs = append(seg.recs, spoolRecord{off: off, size: payload, data: len(hdr) - recHeaderSize, lines: ch.lines, counts: counts})
	seg.size += recSize
	sp.size += recSize
	c.lines += ch.lines
	return nil
}

// create starts a new segment of class cls.
func (sp *spool) create(cls int) (*segment, error) {
	sp.seq++
	path := filepath.Join(sp.dir, segmentName(cls, sp.seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	if _, err := f.WriteString(spoolMagic); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	// The new name must be durable too, or its records vanish in a crash.
	if err := sp.syncDir(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	seg := &segment{path: path, f: f, size: spoolHeaderSize}
	sp.cls[cls].segs = append(sp.cls[cls].segs, seg)
	sp.size += seg.size
	return seg, nil
}

// head returns the oldest unwritten record of class cls and its line
// protocol, which is valid until the next call. An error means the record
// can no longer be read as written (damaged on disk since); the record is
// still returned, so the caller can count its points and pop it.
func (sp *spool) head(cls int) (*spoolRecord, []byte, error) {
	seg := sp.cls[cls].segs[0]
	rec := &seg.recs[0]
	n := recHeaderSize + rec.size
	sp.buf = slices.Grow(sp.buf[:0], n)[:n]
	if _, err := seg.f.ReadAt(sp.buf, rec.off); err != nil {
		return rec, nil, fmt.Errorf("store: spool: read %s: %w", seg.path, err)
	}
	payload := sp.buf[recHeaderSize:]
	if int(binary.LittleEndian.Uint32(sp.buf[0:4])) != rec.size ||
		crc32.Checksum(payload, sp.crc) != binary.LittleEndian.Uint32(sp.buf[4:8]) {
		return rec, nil, fmt.Errorf("store: spool: %s: record at %d damaged", seg.path, rec.off)
	}
	return rec, payload[rec.data:], nil
}

// pop lets the oldest record of class cls go, deleting its segment when
// that was the segment's last record.
func (sp *spool) pop(cls int) {
	c := &sp.cls[cls]
	seg := c.segs[0]
	c.lines -= seg.recs[0].lines
	seg.recs[0] = spoolRecord{}
	seg.recs = seg.recs[1:]
	if len(seg.recs) == 0 {
		sp.removeHead(cls, 0)
	}
}

// evictOldest deletes the oldest segment of class cls and returns the
// unwritten lines it held per measurement; ok is false if cls is empty.
func (sp *spool) evictOldest(cls int) (lost map[string]int, ok bool) {
	c := &sp.cls[cls]
	if len(c.segs) == 0 {
		return nil, false
	}
	lost = map[string]int{}
	for _, r := range c.segs[0].recs {
		for _, mc := range r.counts {
			lost[mc.meas] += mc.n
		}
		c.lines -= r.lines
	}
	sp.removeHead(cls, 0)
	return lost, true
}

// removeHead deletes segment i of class cls (the oldest, or a new one
// whose first write failed).
func (sp *spool) removeHead(cls, i int) {
	c := &sp.cls[cls]
	seg := c.segs[i]
	c.segs = slices.Delete(c.segs, i, i+1)
	sp.size -= seg.size
	seg.f.Close()
	if err := os.Remove(seg.path); err != nil {
		sp.log.Error("InfluxDB spool: cannot delete a replayed segment; it would be replayed again", "file", seg.path, "err", err)
		return
	}
	if err := sp.syncDir(); err != nil {
		sp.log.Warn("InfluxDB spool: directory not synced after a delete", "err", err)
	}
}

func (sp *spool) syncDir() error {
	d, err := os.Open(sp.dir)
	if err != nil {
		return fmt.Errorf("store: spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: spool: sync directory: %w", err)
	}
	return nil
}

// close releases the open files and the lock; the segments stay for the
// next start.
func (sp *spool) close() {
	for i := range sp.cls {
		for _, seg := range sp.cls[i].segs {
			seg.f.Close()
		}
	}
	sp.lock.Close()
}
