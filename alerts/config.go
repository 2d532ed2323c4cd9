package alerts

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crampwatch/crampwatch/wire"
)

// MaxTENSIntensityMA is a sanity ceiling on any configured TENS intensity, in
// milliamperes. It is not a clinical limit: it only catches a configuration
// typo (say 200 for 20) before it can reach a wearer's screen.
const MaxTENSIntensityMA = 100

// MaxTENSDuration is a sanity ceiling on the configured TENS session length.
const MaxTENSDuration = time.Hour

// Config is the alert policy. Start from DefaultConfig and change what you
// need: a zero Config is not valid.
type Config struct {
	// Prefix is the MQTT topic prefix, default wire.DefaultPrefix.
	Prefix string
	// EscalateAfter is how long a cramp must have lasted (from onset) without
	// an acknowledgement before the stronger alert. Default 60 s.
	EscalateAfter time.Duration
	// TENSAfter is how long a cramp must have lasted (from onset) without an
	// acknowledgement before the TENS prompt. Must exceed EscalateAfter.
	// Default 120 s. No prompt is ever sent without TENS.Preset.
	TENSAfter time.Duration
	// Cooldown is the quiet time after an alerted cramp has ended during
	// which a new cramp gets no gentle alert (it still escalates if it turns
	// out long). Default 2 min.
	Cooldown time.Duration
	// MaxPerHour caps the messages that buzz the wearer (gentle alerts,
	// escalations, TENS prompts) per device in any rolling hour of sample
	// time. "ended" messages are not counted: they do not buzz. Default 6.
	MaxPerHour int
	// SnoozeFor is how long a "snooze" acknowledgement holds escalation back.
	// Default 2 min.
	SnoozeFor time.Duration
	// QuietHours is a local-time window "HH:MM-HH:MM" (it may wrap past
	// midnight, e.g. "23:00-06:30") in which there is no escalation and no
	// TENS prompt unless the cramp has lasted QuietOverride. Gentle alerts
	// are still sent. Empty (the default) means no quiet hours.
	QuietHours string
	// QuietOverride is the cramp length past which escalation goes ahead even
	// in quiet hours. Default 3 min.
	QuietOverride time.Duration
	// TimeZone is the IANA zone of the wearer, used for quiet hours and for
	// deciding which night a cramp or diary entry belongs to. Default "Local".
	TimeZone string
	// NightStartHour is the local hour at which a night begins: a night runs
	// from this hour to the same hour the next day and is named by the date
	// it began, so a cramp at 02:00 and a diary entry written at 09:00 belong
	// to the night before. Default 18.
	NightStartHour int
	// TENS is the clinician's TENS preset. Empty Preset disables TENS prompts.
	TENS TENSConfig
	// Webhook is the optional HTTP sink; empty URL disables it.
	Webhook WebhookConfig
	// HADiscovery publishes a retained Home Assistant MQTT discovery config
	// (one "event" entity per device) the first time a device is seen.
	// Default true.
	HADiscovery bool
	// HADiscoveryPrefix is Home Assistant's discovery prefix. Default "homeassistant".
	HADiscoveryPrefix string
	// HADiscoveryRate caps the discovery configs published per second.
	// Discovery waits in its own pending set and goes out only while no
	// wearer message is queued; the cap also spreads a fleet start's burst
	// of retained configs so it does not crowd the shared MQTT connection.
	// Default 100 (1000 devices in 10 s).
	HADiscoveryRate float64
	// PublishTimeout bounds one MQTT publish or one record write. Default 10 s.
	PublishTimeout time.Duration
	// QueueSize is the length of each outbound queue (MQTT, webhook,
	// records). A full queue drops and counts rather than block the pipeline.
	// Home Assistant discovery configs never take a place in these queues.
	// Default 256.
	QueueSize int
}

// TENSConfig is a clinician-configured TENS preset. The service never starts
// stimulation: it only prompts the wearer, naming the preset and its bounds.
type TENSConfig struct {
	// Preset is the preset's name as the wearer's TENS unit shows it.
	Preset string
	// MinMA and MaxMA bound the intensity in milliamperes; 0 < MinMA <= MaxMA
	// <= MaxTENSIntensityMA.
	MinMA, MaxMA float64
	// StartMA is the suggested starting intensity; 0 means MinMA. It must lie
	// within [MinMA, MaxMA].
	StartMA float64
	// MaxDuration is the longest session the clinician allows (at most MaxTENSDuration).
	MaxDuration time.Duration
}

// Enabled reports whether a preset is configured.
func (t TENSConfig) Enabled() bool { return t.Preset != "" }

// start returns the suggested starting intensity.
func (t TENSConfig) start() float64 {
	if t.StartMA == 0 {
		return t.MinMA
	}
	return t.StartMA
}

// WebhookConfig configures the webhook sink.
type WebhookConfig struct {
	// URL receives a JSON POST for every alert, escalation, ended message and
	// TENS prompt. Empty disables the webhook.
	URL string
	// Secret keys the HMAC-SHA256 signature header. Required with URL. Never logged.
	Secret string
	// Timeout bounds one attempt. Default 5 s.
	Timeout time.Duration
	// Retries is how many times a failed delivery is retried (so at most
	// Retries+1 attempts). Default 4.
	Retries int
	// Backoff is the wait before the first retry; it doubles per retry up
	// to MaxBackoff. Defaults 500 ms and 30 s.
	Backoff, MaxBackoff time.Duration
}

// LogValue keeps the secret out of logs.
func (w WebhookConfig) LogValue() slog.Value {
	secret := ""
	if w.Secret != "" {
		secret = "<redacted>"
	}
	return slog.GroupValue(
		slog.String("url", redactURL(w.URL)),
		slog.String("secret", secret),
		slog.Duration("timeout", w.Timeout),
		slog.Int("retries", w.Retries),
	)
}

// String keeps the secret out of fmt output too.
func (w WebhookConfig) String() string { return w.LogValue().String() }

// redactURL drops user info and the query, which may carry credentials.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return ""
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Prefix:            wire.DefaultPrefix,
		EscalateAfter:     60 * time.Second,
		TENSAfter:         120 * time.Second,
		Cooldown:          2 * time.Minute,
		MaxPerHour:        6,
		SnoozeFor:         2 * time.Minute,
		QuietOverride:     3 * time.Minute,
		TimeZone:          "Local",
		NightStartHour:    18,
		HADiscovery:       true,
		HADiscoveryPrefix: "homeassistant",
		HADiscoveryRate:   100,
		PublishTimeout:    10 * time.Second,
		QueueSize:         256,
		Webhook: WebhookConfig{
			Timeout:    5 * time.Second,
			Retries:    4,
			Backoff:    500 * time.Millisecond,
			MaxBackoff: 30 * time.Second,
		},
	}
}

// RegisterFlags defines one flag per setting but the topic prefix (the
// service sets it from its own), named "alert-..." (and
// "tens-...", "webhook-...", "ha-..."), with c's current values as defaults
// and c's fields as destinations. SecretFlags lists the ones never to log.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.EscalateAfter, "alert-escalate-after", c.EscalateAfter, "cramp length without acknowledgement before the stronger alert")
	fs.DurationVar(&c.TENSAfter, "alert-tens-after", c.TENSAfter, "cramp length without acknowledgement before the TENS prompt (needs -tens-preset)")
	fs.DurationVar(&c.Cooldown, "alert-cooldown", c.Cooldown, "no new gentle alert this long after an alerted cramp ended")
	fs.IntVar(&c.MaxPerHour, "alert-max-per-hour", c.MaxPerHour, "most buzzing messages (alert, escalation, TENS prompt) per device per rolling hour")
	fs.DurationVar(&c.SnoozeFor, "alert-snooze", c.SnoozeFor, "how long a snooze acknowledgement holds escalation back")
	fs.StringVar(&c.QuietHours, "alert-quiet-hours", c.QuietHours, `local window "HH:MM-HH:MM" without escalation unless the cramp is long; empty: none`)
	fs.DurationVar(&c.QuietOverride, "alert-quiet-override", c.QuietOverride, "cramp length past which escalation goes ahead in quiet hours")
	fs.StringVar(&c.TimeZone, "alert-time-zone", c.TimeZone, `IANA time zone of the wearer ("Local": the server's)`)
	fs.IntVar(&c.NightStartHour, "alert-night-start-hour", c.NightStartHour, "local hour at which a night begins (for diary linking and night summaries)")
	fs.StringVar(&c.TENS.Preset, "tens-preset", c.TENS.Preset, "clinician's TENS preset name; empty: never prompt for TENS")
	fs.Float64Var(&c.TENS.MinMA, "tens-min-ma", c.TENS.MinMA, "lowest TENS intensity of the preset, mA")
	fs.Float64Var(&c.TENS.MaxMA, "tens-max-ma", c.TENS.MaxMA, "highest TENS intensity of the preset, mA")
	fs.Float64Var(&c.TENS.StartMA, "tens-start-ma", c.TENS.StartMA, "suggested starting TENS intensity, mA (0: the minimum)")
	fs.DurationVar(&c.TENS.MaxDuration, "tens-max-duration", c.TENS.MaxDuration, "longest TENS session of the preset")
	fs.StringVar(&c.Webhook.URL, "webhook-url", c.Webhook.URL, "URL that receives every alert as a signed JSON POST; empty: off")
	fs.StringVar(&c.Webhook.Secret, "webhook-secret", c.Webhook.Secret, "HMAC-SHA256 key for the webhook signature (secret)")
	fs.DurationVar(&c.Webhook.Timeout, "webhook-timeout", c.Webhook.Timeout, "timeout of one webhook attempt")
	fs.IntVar(&c.Webhook.Retries, "webhook-retries", c.Webhook.Retries, "webhook retries after a failed attempt")
	fs.DurationVar(&c.Webhook.Backoff, "webhook-backoff", c.Webhook.Backoff, "wait before the first webhook retry (doubles per retry)")
	fs.DurationVar(&c.Webhook.MaxBackoff, "webhook-max-backoff", c.Webhook.MaxBackoff, "longest wait between webhook retries")
	fs.BoolVar(&c.HADiscovery, "ha-discovery", c.HADiscovery, "publish Home Assistant MQTT discovery for each device")
	fs.StringVar(&c.HADiscoveryPrefix, "ha-discovery-prefix", c.HADiscoveryPrefix, "Home Assistant MQTT discovery prefix")
	fs.Float64Var(&c.HADiscoveryRate, "ha-discovery-rate", c.HADiscoveryRate, "most Home Assistant discovery configs published per second (they always yield to alerts)")
}

// SecretFlags names the flags RegisterFlags defines whose values must never be logged.
func SecretFlags() []string { return []string{"webhook-secret"} }

// quietWindow is a parsed QuietHours: minutes after local midnight.
type quietWindow struct {
	on         bool
	start, end int
}

// contains reports whether local time t falls in the window.
func (q quietWindow) contains(t time.Time) bool {
	if !q.on {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	if q.start < q.end {
		return q.start <= m && m < q.end
	}
	return m >= q.start || m < q.end // wraps past midnight
}

func parseQuietHours(s string) (quietWindow, error) {
	if s == "" {
		return quietWindow{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return quietWindow{}, fmt.Errorf("quiet hours %q: want HH:MM-HH:MM", s)
	}
	start, err := parseClock(a)
	if err != nil {
		return quietWindow{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	end, err := parseClock(b)
	if err != nil {
		return quietWindow{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	if start == end {
		return quietWindow{}, fmt.Errorf("quiet hours %q: start equals end", s)
	}
	return quietWindow{on: true, start: start, end: end}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q: want HH:MM between 00:00 and 23:59", s)
	}
	return hh*60 + mm, nil
}

// Validate reports every problem in c at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.EscalateAfter <= 0 {
		bad("escalate-after %v: must be positive", c.EscalateAfter)
	}
	if c.TENSAfter <= c.EscalateAfter {
		bad("tens-after %v: must be longer than escalate-after %v", c.TENSAfter, c.EscalateAfter)
	}
	if c.Cooldown < 0 {
		bad("cooldown %v: must not be negative", c.Cooldown)
	}
	if c.MaxPerHour < 1 {
		bad("max-per-hour %d: must be at least 1 (to silence alerts, do not run the alert engine)", c.MaxPerHour)
	}
	if c.SnoozeFor <= 0 {
		bad("snooze %v: must be positive", c.SnoozeFor)
	}
	if _, err := parseQuietHours(c.QuietHours); err != nil {
		errs = append(errs, err)
	}
	if c.QuietOverride < 0 {
		bad("quiet-override %v: must not be negative", c.QuietOverride)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		bad("time zone %q: %w", c.TimeZone, err)
	}
	if c.NightStartHour < 0 || c.NightStartHour > 23 {
		bad("night-start-hour %d: want 0..23", c.NightStartHour)
	}
	if err := c.TENS.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Webhook.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.HADiscovery && (c.HADiscoveryPrefix == "" || strings.ContainsAny(c.HADiscoveryPrefix, "+#")) {
		bad("ha-discovery-prefix %q: must be a plain topic prefix", c.HADiscoveryPrefix)
	}
	if c.HADiscovery && !(c.HADiscoveryRate > 0) { // also refuses NaN
		bad("ha-discovery-rate %v: must be positive", c.HADiscoveryRate)
	}
	if strings.ContainsAny(c.Prefix, "+#") {
		bad("prefix %q: must not contain MQTT wildcards", c.Prefix)
	}
	if c.PublishTimeout <= 0 {
		bad("publish timeout %v: must be positive", c.PublishTimeout)
	}
	if c.QueueSize < 1 {
		bad("queue size %d: must be at least 1", c.QueueSize)
	}
	return errors.Join(errs...)
}

func (t TENSConfig) validate() error {
	if !t.Enabled() {
		return nil
	}
	if len(t.Preset) > 64 || !utf8.ValidString(t.Preset) || strings.ContainsFunc(t.Preset, func(r rune) bool { return r < ' ' }) {
		return fmt.Errorf("tens preset %q: want at most 64 printable bytes", t.Preset)
	}
	if !(t.MinMA > 0 && t.MinMA <= t.MaxMA && t.MaxMA <= MaxTENSIntensityMA) {
		return fmt.Errorf("tens intensity bounds %g..%g mA: want 0 < min <= max <= %d", t.MinMA, t.MaxMA, MaxTENSIntensityMA)
	}
	if s := t.start(); s < t.MinMA || s > t.MaxMA {
		return fmt.Errorf("tens start intensity %g mA: outside the bounds %g..%g mA", s, t.MinMA, t.MaxMA)
	}
	if t.MaxDuration <= 0 || t.MaxDuration > MaxTENSDuration {
		return fmt.Errorf("tens max duration %v: want more than 0 and at most %v", t.MaxDuration, MaxTENSDuration)
	}
	return nil
}

func (w WebhookConfig) validate() error {
	if w.URL == "" {
		return nil
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The raw URL may carry credentials, so the error names only what is wrong.
		return errors.New("webhook url: want an absolute http or https URL")
	}
	if w.Secret == "" {
		return errors.New("webhook secret: required with a webhook url (receivers must be able to verify the signature)")
	}
	if w.Timeout <= 0 {
		return fmt.Errorf("webhook timeout %v: must be positive", w.Timeout)
	}
	if w.Retries < 0 || w.Retries > 20 {
		return fmt.Errorf("webhook retries %d: want 0..20", w.Retries)
	}
	if w.Backoff <= 0 || w.MaxBackoff < w.Backoff {
		return fmt.Errorf("webhook backoff %v..%v: want 0 < backoff <= max backoff", w.Backoff, w.MaxBackoff)
	}
	return nil
}
