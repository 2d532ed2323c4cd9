package wire

import (
	"strings"
	"testing"
)

func TestTopic(t *testing.T) {
	cases := []struct {
		prefix, device string
		s              Stream
		want           string
	}{
		{DefaultPrefix, "dev-01", StreamEMG, "crampwatch/v1/dev-01/emg"},
		{"crampwatch/v1/", "dev_01", StreamStatus, "crampwatch/v1/dev_01/status"},
		{"", "x", StreamEvents, "x/events"},
		{"site/a", "Z9", StreamTENS, "site/a/Z9/tens"},
	}
	for _, tc := range cases {
		got := Topic(tc.prefix, tc.device, tc.s)
		if got != tc.want {
			t.Errorf("Topic(%q, %q, %v) = %q, want %q", tc.prefix, tc.device, tc.s, got, tc.want)
		}
		dev, s, err := ParseTopic(tc.prefix, got)
		if err != nil || dev != tc.device || s != tc.s {
			t.Errorf("ParseTopic(%q, %q) = %q, %v, %v; want %q, %v", tc.prefix, got, dev, s, err, tc.device, tc.s)
		}
	}
}

func TestValidDevice(t *testing.T) {
	cases := []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"Dev_01-x", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"a/b", false},
		{"+", false},
		{"#", false},
		{"dev 1", false},
		{"dév", false},
		{"a.b", false},
		{"a\x00", false},
	}
	for _, tc := range cases {
		if got := ValidDevice(tc.id); got != tc.want {
			t.Errorf("ValidDevice(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestParseTopic(t *testing.T) {
	cases := []struct {
		prefix, topic string
		device        string
		s             Stream
		want          Reason
	}{
		{DefaultPrefix, "crampwatch/v1/dev1/emg", "dev1", StreamEMG, ""},
		{DefaultPrefix, "crampwatch/v1/dev1/imu", "dev1", StreamIMU, ""},
		{DefaultPrefix, "crampwatch/v1/dev1/diary", "dev1", StreamDiary, ""},
		{DefaultPrefix, "crampwatch/v1/dev1/ack", "dev1", StreamAck, ""},
		{"", "dev1/status", "dev1", StreamStatus, ""},
		{DefaultPrefix, "crampwatch/v2/dev1/emg", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1/", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1dev1/emg", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1/dev1", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1/dev1/emg/extra", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1/dev1/EMG", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1/dev1/", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1/dev1/temperature", "", 0, ReasonBadTopic},
		{DefaultPrefix, "crampwatch/v1//emg", "", 0, ReasonBadDevice},
		{DefaultPrefix, "crampwatch/v1/+/emg", "", 0, ReasonBadDevice},
		{DefaultPrefix, "crampwatch/v1/dev.1/emg", "", 0, ReasonBadDevice},
		{DefaultPrefix, "crampwatch/v1/" + strings.Repeat("d", 65) + "/emg", "", 0, ReasonBadDevice},
		{"", "/dev1/emg", "", 0, ReasonBadTopic},
	}
	for _, tc := range cases {
		dev, s, err := ParseTopic(tc.prefix, tc.topic)
		if tc.want == "" {
			if err != nil || dev != tc.device || s != tc.s {
				t.Errorf("ParseTopic(%q, %q) = %q, %v, %v; want %q, %v", tc.prefix, tc.topic, dev, s, err, tc.device, tc.s)
			}
			continue
		}
		if r := reasonOf(err); r != tc.want {
			t.Errorf("ParseTopic(%q, %q): error %v, want reason %s", tc.prefix, tc.topic, err, tc.want)
		}
	}
}

func TestParseTopicAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := ParseTopic(DefaultPrefix, "crampwatch/v1/dev-01/emg"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseTopic allocates %v times per call, want 0", allocs)
	}
}
