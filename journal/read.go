package journal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/eventpub"
)

// Read returns the events in the journal file at path, in file order. A
// last line cut short by a crash is skipped. Malformed lines (including a
// torn line that a restart has since appended after) are skipped too, and
// reported in the returned error (a join of *LineError) alongside
// the events that could be read.
func Read(path string) ([]detect.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	var (
		events []detect.Event
		errs   []error
	)
	for e, err := range Events(f) {
		if err != nil {
			if _, ok := err.(*LineError); !ok { // I/O error: nothing more to read
				return events, fmt.Errorf("journal: %s: %w", path, err)
			}
			errs = append(errs, err)
			continue
		}
		events = append(events, e)
	}
	if len(errs) > 0 {
		return events, fmt.Errorf("journal: %s: %d malformed lines: %w", path, len(errs), errors.Join(errs...))
	}
	return events, nil
}

// LineError is a journal line that is not a valid event.
type LineError struct {
	Line int // 1-based line number
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the decoding error.
func (e *LineError) Unwrap() error { return e.Err }

// Events streams the events of a journal read from r, in order, for export
// of journals too large to hold in memory. A malformed line yields a
// *LineError and the stream goes on with the next line; an I/O error is
// yielded last. A last line without a newline that does not decode is the
// tail of a write cut short by a crash and is skipped silently.
func Events(r io.Reader) iter.Seq2[detect.Event, error] {
	return func(yield func(detect.Event, error) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		for n := 1; ; n++ {
			line, err := br.ReadBytes('\n')
			complete := err == nil
			if err != nil && (err != io.EOF || len(line) == 0) {
				if err != io.EOF {
					yield(detect.Event{}, err)
				}
				return
			}
			if complete {
				line = line[:len(line)-1]
			}
			if len(line) == 0 {
				continue
			}
			e, derr := decode(line)
			if derr != nil {
				if !complete {
					return
				}
				if !yield(detect.Event{}, &LineError{Line: n, Err: derr}) {
					return
				}
				continue
			}
			if !yield(e, nil) {
				return
			}
			if !complete {
				return
			}
		}
	}
}

func decode(line []byte) (detect.Event, error) {
	var j eventpub.Event
	if err := json.Unmarshal(line, &j); err != nil {
		return detect.Event{}, err
	}
	return j.Detect()
}
