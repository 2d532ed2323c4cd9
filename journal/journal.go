// Package journal keeps the local event journal: a JSON Lines file with one
// detected event per line, in the JSON form of package eventpub. It is the
// event store when InfluxDB is not configured and, always, a local record
// that survives database and broker outages.
//
// Both reports of a cramp are appended (first "ongoing", then "ended" with
// the same id), so the file is a faithful log; Read and Events return every
// line, and a reader that wants one row per event keeps the last line of
// each id. Lines are written to the file as soon as the writer goroutine
// takes them from the queue, and fsynced every SyncInterval and on Close, so
// a crash loses at most SyncInterval of events. The journal is not rotated.
package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/eventpub"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/store/sinkmetrics"
	"github.com/crampwatch/crampwatch/store/sinkqueue"
)

// FileMode is the mode a new journal file is created with: it holds health
// data, so only the service's user may read it.
const FileMode os.FileMode = 0o600

// Config configures a Journal. Zero values take the documented defaults.
type Config struct {
	// Path of the journal file; required. It is created if missing and
	// appended to otherwise.
	Path string
	// SyncInterval is how often written lines are fsynced; default 1 s.
	SyncInterval time.Duration
	// QueueSize bounds the events waiting to be written; default 4096. A
	// full queue (the disk stalled) drops further events, counted.
	QueueSize int
	// Logger receives write failures; default slog.Default().
	Logger *slog.Logger
}

const (
	sinkName    = "journal"
	measurement = "events"
)

// Journal appends events to the journal file. It implements pipeline.Sink;
// envelope, motion and health are not journalled and are ignored. It is safe
// for concurrent use.
type Journal struct {
	f       *os.File
	cfg     Config
	log     *slog.Logger
	metrics *sinkmetrics.Sink

	written, errs, dropped prometheus.Counter

	q   *sinkqueue.Queue
	err error // first close error of the writer, read after the queue is closed
}

// Open opens (or creates) the journal file and starts its writer. Metrics
// are registered with reg (nil: not registered).
func Open(cfg Config, reg prometheus.Registerer) (*Journal, error) {
	if cfg.Path == "" {
		return nil, errors.New("journal: no path")
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := sinkmetrics.New(reg)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := terminateLastLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: %s: %w", cfg.Path, err)
	}
	j := &Journal{
		f:       f,
		cfg:     cfg,
		log:     cfg.Logger.With("sink", sinkName, "path", cfg.Path),
		metrics: m.Sink(sinkName),
	}
	j.q = sinkqueue.New(cfg.QueueSize, j.metrics.SetDepth)
	j.written, j.errs, j.dropped = j.metrics.Counters(measurement)
	go j.run()
	return j, nil
}

// terminateLastLine appends a newline if a crash left the file ending in a
// partial line, so the next event starts on a line of its own instead of
// corrupting itself too.
func terminateLastLine(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// Event queues e for appending. It never blocks: if the queue is full or the
// journal is closed, the event is counted as dropped and logged.
func (j *Journal) Event(e detect.Event) {
	if err := j.q.Offer(e); err != nil {
		j.drop(&e, err.Error())
	}
}

// Envelope is ignored: the journal records events only.
func (j *Journal) Envelope(detect.Envelope) {}

// Motion is ignored: the journal records events only.
func (j *Journal) Motion(detect.Motion) {}

// Health is ignored: the journal records events only.
func (j *Journal) Health(ingest.Health) {}

// Close writes the queued events, fsyncs and closes the file. If ctx ends
// first it returns ctx's error without waiting further; the writer still
// finishes (and closes the file) in the background.
func (j *Journal) Close(ctx context.Context) error {
	first, err := j.q.Close(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("journal: close: %w", err)
	case first:
		return j.err
	}
	return nil
}

func (j *Journal) drop(e *detect.Event, why string) {
	j.dropped.Inc()
	j.log.Error("event not journalled", "reason", why, "device", e.Device, "kind", e.Kind, "state", e.State, "onset", e.Onset)
}

func (j *Journal) run() {
	defer j.q.Finished()
	tick := time.NewTicker(j.cfg.SyncInterval)
	defer tick.Stop()
	var (
		buf   []byte
		batch []detect.Event
		dirty bool
	)
	// write appends the events in batch with one write call, so a line is
	// never split across calls.
	write := func() {
		buf = buf[:0]
		n := 0
		for i := range batch {
			line, err := json.Marshal(eventpub.FromDetect(&batch[i]))
			if err != nil { // cannot happen for FromDetect's output; counted if it does
				j.errs.Inc()
				j.drop(&batch[i], "encode: "+err.Error())
				continue
			}
			buf = append(append(buf, line...), '\n')
			n++
		}
		if n > 0 {
			if _, err := j.f.Write(buf); err != nil {
				// Some bytes may have reached the file; the partial line is
				// terminated at the next Open and skipped by readers.
				j.errs.Inc()
				j.dropped.Add(float64(n))
				j.log.Error("journal write failed", "err", err, "events", n)
			} else {
				j.written.Add(float64(n))
				dirty = true
			}
		}
		batch = batch[:0]
	}
	syncFile := func() {
		if !dirty {
			return
		}
		if err := j.f.Sync(); err != nil {
			j.errs.Inc()
			j.log.Error("journal fsync failed", "err", err)
			return
		}
		dirty = false
	}
	for {
		select {
		case e := <-j.q.Events():
			batch = j.q.Take(append(batch, e))
			write()
		case <-tick.C:
			syncFile()
		case <-j.q.Closing():
			// Event queues nothing once closing: this drains all.
			batch = j.q.Take(batch)
			write()
			syncFile()
			if dirty {
				j.err = errors.New("journal: fsync failed at close")
			}
			if err := j.f.Close(); err != nil && j.err == nil {
				j.err = fmt.Errorf("journal: %w", err)
			}
			return
		}
	}
}
