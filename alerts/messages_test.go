package alerts

import (
	"errors"
	"flag"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    Ack
		reason  Reason
	}{
		{"ok", `{"id":"al-x","action":"ok"}`, Ack{ID: "al-x", Action: "ok"}, ""},
		{"every action", `{"id":"a","action":"tens_declined"}`, Ack{ID: "a", Action: "tens_declined"}, ""},
		{"extra fields ignored", `{"id":"a","action":"snooze","app":"1.2"}`, Ack{ID: "a", Action: "snooze"}, ""},
		{"not json", `ok`, Ack{}, ReasonBadJSON},
		{"id not a string", `{"id":7,"action":"ok"}`, Ack{}, ReasonBadJSON},
		{"missing id", `{"action":"ok"}`, Ack{}, ReasonMissingID},
		{"unknown action", `{"id":"a","action":"stop_tens"}`, Ack{}, ReasonBadAction},
		{"missing action", `{"id":"a"}`, Ack{}, ReasonBadAction},
		{"oversize", `{"id":"` + strings.Repeat("x", MaxInboundBytes) + `","action":"ok"}`, Ack{}, ReasonOversize},
		{"absurd id", `{"id":"` + strings.Repeat("x", 300) + `","action":"ok"}`, Ack{}, ReasonUnknownID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAck([]byte(tc.payload))
			checkReason(t, err, tc.reason)
			if tc.reason == "" && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseDiary(t *testing.T) {
	six := 6
	zero := 0
	for _, tc := range []struct {
		name    string
		payload string
		want    DiaryEntry
		reason  Reason
	}{
		{"full", `{"pain":6,"helped":["stretch","Heat","stretch"],"note":" woke at 3 ","t":1763946000000000}`,
			DiaryEntry{Pain: &six, Helped: []Remedy{RemedyStretch, RemedyHeat}, Note: "woke at 3", T: 1763946000000000}, ""},
		{"pain zero", `{"pain":0}`, DiaryEntry{Pain: &zero}, ""},
		{"only helped", `{"helped":["magnesium","tens","medication","walk","water","massage"]}`,
			DiaryEntry{Helped: []Remedy{RemedyMagnesium, RemedyTENS, RemedyMedication, RemedyWalk, RemedyWater, RemedyMassage}}, ""},
		{"names an alert", `{"note":"bad one","id":"al-1"}`, DiaryEntry{Note: "bad one", ID: "al-1"}, ""},
		{"pain 11", `{"pain":11}`, DiaryEntry{}, ReasonBadPain},
		{"pain negative", `{"pain":-1}`, DiaryEntry{}, ReasonBadPain},
		{"pain fraction", `{"pain":3.5}`, DiaryEntry{}, ReasonBadPain},
		{"pain string", `{"pain":"6"}`, DiaryEntry{}, ReasonBadJSON},
		{"unknown remedy", `{"helped":["whisky"]}`, DiaryEntry{}, ReasonUnknownRemedy},
		{"note too long", `{"note":"` + strings.Repeat("a", MaxNoteBytes+1) + `"}`, DiaryEntry{}, ReasonBadNote},
		// encoding/json turns invalid UTF-8 into U+FFFD, so what is stored is valid.
		{"invalid utf-8 note", "{\"note\":\"\xff\xfe\"}", DiaryEntry{Note: "\ufffd\ufffd"}, ""},
		{"negative time", `{"pain":2,"t":-5}`, DiaryEntry{}, ReasonBadTime},
		{"empty", `{}`, DiaryEntry{}, ReasonEmpty},
		{"blank note only", `{"note":"   "}`, DiaryEntry{}, ReasonEmpty},
		{"truncated", `{"pain":`, DiaryEntry{}, ReasonBadJSON},
		{"oversize", `{"note":"` + strings.Repeat("a", MaxInboundBytes) + `"}`, DiaryEntry{}, ReasonOversize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDiary([]byte(tc.payload))
			checkReason(t, err, tc.reason)
			if tc.reason != "" {
				return
			}
			if (got.Pain == nil) != (tc.want.Pain == nil) || (got.Pain != nil && *got.Pain != *tc.want.Pain) ||
				!slices.Equal(got.Helped, tc.want.Helped) || got.Note != tc.want.Note || got.T != tc.want.T || got.ID != tc.want.ID {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func checkReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	var re *RejectError
	if !errors.As(err, &re) || re.Reason != want {
		t.Fatalf("error %v, want reason %s", err, want)
	}
}

func FuzzParseAck(f *testing.F) {
	f.Add([]byte(`{"id":"al-x","action":"ok"}`))
	f.Add([]byte(`{"id":"","action":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAck(b)
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RejectError", err)
			}
			return
		}
		if a.ID == "" || !validAction(a.Action) {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func FuzzParseDiary(f *testing.F) {
	f.Add([]byte(`{"pain":6,"helped":["stretch","heat"],"note":"x","t":1}`))
	f.Add([]byte(`{"pain":1e308}`))
	f.Add([]byte(`{"helped":[null]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDiary(b)
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RejectError", err)
			}
			return
		}
		if d.Pain != nil && (*d.Pain < 0 || *d.Pain > 10) {
			t.Fatalf("pain %d accepted", *d.Pain)
		}
		for _, r := range d.Helped {
			if !validRemedy(r) {
				t.Fatalf("remedy %q accepted", r)
			}
		}
		if len(d.Note) > MaxNoteBytes || d.T < 0 {
			t.Fatalf("accepted %+v", d)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tens := TENSConfig{Preset: "calf", MinMA: 5, MaxMA: 20, MaxDuration: 10 * time.Minute}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; empty: valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"tens preset", func(c *Config) { c.TENS = tens }, ""},
		{"quiet hours wrap", func(c *Config) { c.QuietHours = "23:00-06:30" }, ""},
		{"webhook", func(c *Config) { c.Webhook.URL, c.Webhook.Secret = "https://example.org/hook", "s3cret" }, ""},
		{"tens after before escalation", func(c *Config) { c.TENSAfter = 30 * time.Second }, "tens-after"},
		{"zero escalation", func(c *Config) { c.EscalateAfter = 0 }, "escalate-after"},
		{"zero cap", func(c *Config) { c.MaxPerHour = 0 }, "max-per-hour"},
		{"bad quiet hours", func(c *Config) { c.QuietHours = "23-6" }, "quiet hours"},
		{"quiet hours 24:00", func(c *Config) { c.QuietHours = "22:00-24:00" }, "quiet hours"},
		{"unknown zone", func(c *Config) { c.TimeZone = "Mars/Olympus" }, "time zone"},
		{"night hour", func(c *Config) { c.NightStartHour = 24 }, "night-start-hour"},
		{"tens min above max", func(c *Config) { c.TENS = tens; c.TENS.MinMA = 30 }, "tens intensity"},
		{"tens zero min", func(c *Config) { c.TENS = tens; c.TENS.MinMA = 0 }, "tens intensity"},
		{"tens absurd max", func(c *Config) { c.TENS = tens; c.TENS.MaxMA = 200 }, "tens intensity"},
		{"tens start outside", func(c *Config) { c.TENS = tens; c.TENS.StartMA = 25 }, "start intensity"},
		{"tens no duration", func(c *Config) { c.TENS = tens; c.TENS.MaxDuration = 0 }, "max duration"},
		{"tens preset control char", func(c *Config) { c.TENS = tens; c.TENS.Preset = "a\nb" }, "tens preset"},
		{"webhook without secret", func(c *Config) { c.Webhook.URL = "https://example.org/hook" }, "webhook secret"},
		{"webhook not http", func(c *Config) { c.Webhook.URL, c.Webhook.Secret = "ftp://x/y", "s" }, "webhook url"},
		{"wildcard prefix", func(c *Config) { c.Prefix = "a/#" }, "prefix"},
		{"zero discovery rate", func(c *Config) { c.HADiscoveryRate = 0 }, "ha-discovery-rate"},
		{"NaN discovery rate", func(c *Config) { c.HADiscoveryRate = math.NaN() }, "ha-discovery-rate"},
		{"no rate without discovery", func(c *Config) { c.HADiscovery, c.HADiscoveryRate = false, 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

func TestWebhookSecretNeverPrinted(t *testing.T) {
	w := WebhookConfig{URL: "https://user:pw@example.org/hook?token=abc", Secret: "topsecret"}
	for _, s := range []string{w.String(), w.LogValue().String()} {
		if strings.Contains(s, "topsecret") || strings.Contains(s, "pw") || strings.Contains(s, "abc") {
			t.Errorf("leaks a secret: %s", s)
		}
	}
	c := DefaultConfig()
	c.Webhook = w
	c.Webhook.URL = "ftp://user:pw@example.org/"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("validation error %v leaks the URL", err)
	}
}

func TestQuietWindow(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		clock string
		want  bool
	}{
		{"23:00-06:30", "23:00", true},
		{"23:00-06:30", "02:15", true},
		{"23:00-06:30", "06:30", false},
		{"23:00-06:30", "22:59", false},
		{"13:00-15:00", "14:00", true},
		{"13:00-15:00", "15:00", false},
		{"", "03:00", false},
	} {
		q, err := parseQuietHours(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		tm, _ := time.Parse("15:04", tc.clock)
		if got := q.contains(tm); got != tc.want {
			t.Errorf("%q contains %s = %v, want %v", tc.spec, tc.clock, got, tc.want)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{
		"-alert-quiet-hours=23:00-06:00", "-alert-escalate-after=45s", "-alert-max-per-hour=3",
		"-tens-preset=calf-night", "-tens-min-ma=8", "-tens-max-ma=20", "-tens-max-duration=15m",
		"-webhook-url=https://example.org/h", "-webhook-secret=s", "-ha-discovery=false",
		"-ha-discovery-rate=20",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.QuietHours != "23:00-06:00" || c.EscalateAfter != 45*time.Second || c.MaxPerHour != 3 ||
		c.TENS.Preset != "calf-night" || c.TENS.MinMA != 8 || c.TENS.MaxMA != 20 || c.TENS.MaxDuration != 15*time.Minute ||
		c.Webhook.URL != "https://example.org/h" || c.Webhook.Secret != "s" || c.HADiscovery || c.HADiscoveryRate != 20 {
		t.Errorf("flags not applied: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("config from flags: %v", err)
	}
	for _, name := range SecretFlags() {
		if fs.Lookup(name) == nil {
			t.Errorf("secret flag %q is not defined", name)
		}
	}
	// Unchanged flags keep the defaults.
	if c.Cooldown != DefaultConfig().Cooldown || c.Webhook.Retries != DefaultConfig().Webhook.Retries {
		t.Errorf("defaults lost: %+v", c)
	}
}
