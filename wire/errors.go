package wire

import "fmt"

// Reason is a short, stable, metric-label-safe name for why a message was rejected.
type Reason string

// Rejection reasons. They are used as Prometheus label values, so the set is fixed.
const (
	ReasonOversize       Reason = "oversize"
	ReasonBadTopic       Reason = "bad_topic"
	ReasonBadDevice      Reason = "bad_device"
	ReasonBadJSON        Reason = "bad_json"
	ReasonBadBinary      Reason = "bad_binary"
	ReasonBadVersion     Reason = "bad_version"
	ReasonUnknownChannel Reason = "unknown_channel"
	ReasonUnknownSite    Reason = "unknown_site"
	ReasonBadUnit        Reason = "bad_unit"
	ReasonBadRate        Reason = "bad_rate"
	ReasonRagged         Reason = "ragged"
	ReasonEmpty          Reason = "empty"
	ReasonNonFinite      Reason = "non_finite"
	ReasonOutOfRange     Reason = "out_of_range"
	ReasonBadTime        Reason = "bad_time"
	ReasonDuplicateLabel Reason = "duplicate_channel"
	ReasonMissingField   Reason = "missing_field"
)

// Reasons returns every rejection reason, so that metrics can create all
// their label values up front and dashboards show zeros rather than gaps.
func Reasons() []Reason {
	return []Reason{
		ReasonOversize, ReasonBadTopic, ReasonBadDevice, ReasonBadJSON, ReasonBadBinary,
		ReasonBadVersion, ReasonUnknownChannel, ReasonUnknownSite, ReasonBadUnit, ReasonBadRate,
		ReasonRagged, ReasonEmpty, ReasonNonFinite, ReasonOutOfRange, ReasonBadTime,
		ReasonDuplicateLabel, ReasonMissingField,
	}
}

// Error is a rejected message: a Reason for counting and a human-readable detail.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Reason, e.Detail) }

func reject(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
