package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers. The signature is "sha256=" followed by the hex HMAC-SHA256,
// keyed with the shared secret, of the timestamp header, a dot and the body.
const (
	HeaderSignature = "X-Crampwatch-Signature"
	HeaderTimestamp = "X-Crampwatch-Timestamp" // Unix seconds when the attempt was signed
	HeaderEvent     = "X-Crampwatch-Event"     // message type: alert, escalation, ended, tens_prompt
	HeaderDelivery  = "X-Crampwatch-Delivery"  // the same on every retry of one message
)

// Notifier delivers outbound messages somewhere other than MQTT.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// Webhook POSTs each message as JSON to a URL, signed, with retries.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	now    func() time.Time
}

// NewWebhook returns a webhook sink for cfg. client may be nil for a plain
// http.Client; the per-attempt timeout comes from cfg either way.
func NewWebhook(cfg WebhookConfig, client *http.Client) (*Webhook, error) {
	if cfg.URL == "" {
		return nil, errors.New("webhook: no url")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Webhook{cfg: cfg, client: client, now: time.Now}, nil
}

// Sign returns the signature header value for body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature is the right one for body and timestamp,
// in constant time. Receivers should also refuse old timestamps.
func Verify(secret []byte, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

// permanentError is a delivery failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Notify delivers n, retrying network errors, timeouts, 408, 429 and 5xx
// with exponential backoff. It gives up at once on other 4xx answers and
// when ctx is done.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	var last error
	wait := w.cfg.Backoff
	for attempt := 0; attempt <= w.cfg.Retries; attempt++ {
		if attempt > 0 {
			d := wait + rand.N(wait/4+1) // a little jitter so many instances do not retry in step
			if ra, ok := retryAfter(last); ok && ra > d && ra <= w.cfg.MaxBackoff {
				d = ra
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("webhook %s: %w (last error: %v)", n.ID, ctx.Err(), last)
			case <-t.C:
			}
			wait = min(wait*2, w.cfg.MaxBackoff)
		}
		err := w.attempt(ctx, n)
		if err == nil {
			return nil
		}
		last = err
		var perm permanentError
		if errors.As(err, &perm) {
			return fmt.Errorf("webhook %s: %w", n.ID, err)
		}
	}
	return fmt.Errorf("webhook %s: gave up after %d attempts: %w", n.ID, w.cfg.Retries+1, last)
}

// statusError is a non-2xx answer.
type statusError struct {
	code       int
	retryAfter time.Duration
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

func retryAfter(err error) (time.Duration, bool) {
	var se *statusError
	if errors.As(err, &se) && se.retryAfter > 0 {
		return se.retryAfter, true
	}
	return 0, false
}

func (w *Webhook) attempt(ctx context.Context, n Notification) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(n.Payload))
	if err != nil {
		return permanentError{fmt.Errorf("request: %w", err)}
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "crampwatch-alerts/1")
	req.Header.Set(HeaderEvent, n.Type)
	req.Header.Set(HeaderDelivery, n.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign([]byte(w.cfg.Secret), ts, n.Payload))
	resp, err := w.client.Do(req)
	if err != nil {
		// The error text holds the URL, which may carry credentials.
		return fmt.Errorf("post: %w", scrubURL(err))
	}
	// Drain a little so the connection can be reused, but never read a
	// hostile endless body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		se := &statusError{code: c}
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
			se.retryAfter = time.Duration(s) * time.Second
		}
		return se
	default:
		return permanentError{&statusError{code: c}}
	}
}

// scrubURL drops the URL from a client error, keeping the cause.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}
