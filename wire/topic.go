package wire

import "strings"

// DefaultPrefix is the topic prefix of wire contract v1 when none is configured.
const DefaultPrefix = "crampwatch/v1"

// maxDeviceLen is the longest device id the contract allows.
const maxDeviceLen = 64

// Topic builds "{prefix}/{device}/{stream}". A trailing slash on prefix is
// ignored and an empty prefix yields "{device}/{stream}", so a prefix read
// from a config file works either way.
func Topic(prefix, device string, s Stream) string {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return device + "/" + s.String()
	}
	return prefix + "/" + device + "/" + s.String()
}

// ValidDevice reports whether id matches [A-Za-z0-9_-]{1,64}. The rule keeps
// device ids safe as MQTT topic levels (no wildcards, no separators), as
// InfluxDB tag values and as file names.
func ValidDevice(id string) bool {
	if len(id) == 0 || len(id) > maxDeviceLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ParseTopic splits a topic under prefix into its device id and stream.
// Errors are *Error with ReasonBadTopic (not under prefix, wrong number of
// levels, unknown stream) or ReasonBadDevice (device level fails ValidDevice).
// The returned device shares memory with topic, so it costs no allocation.
func ParseTopic(prefix, topic string) (device string, s Stream, err error) {
	prefix = strings.TrimSuffix(prefix, "/")
	rest := topic
	if prefix != "" {
		// Compare in two steps rather than against prefix+"/" so that the
		// common path does not allocate.
		if len(topic) <= len(prefix) || topic[len(prefix)] != '/' || topic[:len(prefix)] != prefix {
			return "", 0, reject(ReasonBadTopic, "topic %q is not under prefix %q", clip(topic), clip(prefix))
		}
		rest = topic[len(prefix)+1:]
	}
	device, level, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(level, "/") {
		return "", 0, reject(ReasonBadTopic, "topic %q: want %s/{device}/{stream}", clip(topic), clip(prefix))
	}
	s, ok = ParseStream(level)
	if !ok {
		return "", 0, reject(ReasonBadTopic, "topic %q: unknown stream %q", clip(topic), clip(level))
	}
	if !ValidDevice(device) {
		return "", 0, reject(ReasonBadDevice, "device id %q: want [A-Za-z0-9_-]{1,64}", clip(device))
	}
	return device, s, nil
}

// clip shortens hostile strings before they go into error details and logs.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
