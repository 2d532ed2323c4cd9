package mqttclient

import (
	"fmt"
	"strings"
	"testing"
)

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"crampwatch/v1/+/emg", "crampwatch/v1/dev-1/emg", true},
		{"crampwatch/v1/+/emg", "crampwatch/v1/dev-1/imu", false},
		{"crampwatch/v1/+/emg", "crampwatch/v1/dev-1/emg/x", false},
		{"crampwatch/v1/+/emg", "crampwatch/v1/emg", false},
		{"crampwatch/v1/#", "crampwatch/v1/dev-1/emg", true},
		{"crampwatch/v1/#", "crampwatch/v1", true}, // # matches the parent level too
		{"crampwatch/v1/#", "crampwatch/v2/dev-1/emg", false},
		{"#", "anything/at/all", true},
		{"#", "$SYS/broker/uptime", false}, // wildcards at the start skip $ topics
		{"+/broker/uptime", "$SYS/broker/uptime", false},
		{"$SYS/broker/+", "$SYS/broker/uptime", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/+", "/a", true}, // an empty level is a level
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/b", "a/b", true},
		{"a/b", "a/bc", false},
	}
	for _, tc := range tests {
		if got := matchTopic(strings.Split(tc.filter, "/"), tc.topic); got != tc.want {
			t.Errorf("matchTopic(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestRoutes(t *testing.T) {
	var got []string
	h := func(name string) handlerFunc {
		return func(topic string, _ []byte) { got = append(got, name+" "+topic) }
	}
	r := (&routes{}).
		with("p/+/emg", h("emg")).
		with("p/dev-1/imu", h("dev-1 imu")).
		with("$share/g/p/+/status", h("status")).
		with("p/#", h("all")).
		with("p/+/emg", h("emg2")) // replaces the first handler, keeps its place
	tests := []struct {
		topic string
		want  string
	}{
		{"p/dev-1/emg", "[emg2 p/dev-1/emg all p/dev-1/emg]"},
		{"p/dev-1/imu", "[dev-1 imu p/dev-1/imu all p/dev-1/imu]"},
		{"p/dev-2/imu", "[all p/dev-2/imu]"},
		{"p/dev-2/status", "[status p/dev-2/status all p/dev-2/status]"},
		{"q/dev-2/emg", "[]"},
	}
	for _, tc := range tests {
		got = got[:0]
		n := r.each(tc.topic, nil)
		if s := fmt.Sprint(got); s != tc.want || n != len(got) {
			t.Errorf("%s: handlers %s (n=%d), want %s", tc.topic, s, n, tc.want)
		}
	}
}

// BenchmarkDispatch routes one message through the table of a partitioned
// instance: 500 devices' exact filters for three streams plus two wildcard
// filters (acks and diary), as cmd/crampwatch's partitions register them.
func BenchmarkDispatch(b *testing.B) {
	r := &routes{}
	nop := func(string, []byte) {}
	for d := range 500 {
		for _, s := range []string{"emg", "imu", "status"} {
			r = r.with(fmt.Sprintf("crampwatch/v1/dev-%04d/%s", d, s), nop)
		}
	}
	r = r.with("crampwatch/v1/+/ack", nop).with("crampwatch/v1/+/diary", nop)
	b.ReportAllocs()
	for b.Loop() {
		if r.each("crampwatch/v1/dev-0250/emg", nil) != 1 {
			b.Fatal("not routed")
		}
	}
}
