// Package pipeline joins the stages of the data path: it receives ordered
// per-device frames from ingest, runs one detector per device and fans the
// detector's output and device health out to the sinks.
package pipeline

import (
	"context"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
)

// Sink receives events, envelope and motion points and device health.
// Sinks must not block the pipeline: they queue, and drain in Close.
type Sink interface {
	detect.Output
	Health(ingest.Health)
	// Close flushes what is queued and releases the sink. It returns when
	// everything is written or ctx is done.
	Close(ctx context.Context) error
}
