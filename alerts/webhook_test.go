package alerts

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// hookServer records what a webhook receiver sees and answers with the
// scripted status codes (then 200).
type hookServer struct {
	mu       sync.Mutex
	statuses []int
	delay    time.Duration // before answering the first len(statuses) requests
	got      []hookRequest
}

type hookRequest struct {
	at       time.Time
	body     []byte
	header   http.Header
	verified bool
}

const hookSecret = "correct horse battery staple"

func (s *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(HeaderTimestamp)
	ok := Verify([]byte(hookSecret), ts, body, r.Header.Get(HeaderSignature))
	s.mu.Lock()
	n := len(s.got)
	s.got = append(s.got, hookRequest{at: time.Now(), body: body, header: r.Header.Clone(), verified: ok})
	status, delay := http.StatusOK, time.Duration(0)
	if n < len(s.statuses) {
		status, delay = s.statuses[n], s.delay
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
}

func (s *hookServer) requests() []hookRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hookRequest(nil), s.got...)
}

func hookConfig(url string) WebhookConfig {
	return WebhookConfig{URL: url, Secret: hookSecret, Timeout: 200 * time.Millisecond, Retries: 3,
		Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
}

var hookNote = Notification{Device: dev, Type: TypeAlert, ID: "al-x/alert", AlertID: "al-x",
	Payload: []byte(`{"type":"alert","id":"al-x","device":"dev1"}`)}

func TestWebhook(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		delay    time.Duration
		wantN    int  // requests the server sees
		wantErr  bool // Notify gives up
	}{
		{"delivered first time", nil, 0, 1, false},
		{"retries 500 with backoff", []int{500, 503}, 0, 3, false},
		{"retries 429", []int{429}, 0, 2, false},
		{"gives up after retries", []int{500, 500, 500, 500, 500}, 0, 4, true},
		{"no retry on 400", []int{400}, 0, 1, true},
		{"no retry on 401", []int{401}, 0, 1, true},
		{"timeout is retried", []int{200}, time.Second, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &hookServer{statuses: tc.statuses, delay: tc.delay}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			w, err := NewWebhook(hookConfig(ts.URL), ts.Client())
			if err != nil {
				t.Fatal(err)
			}
			err = w.Notify(context.Background(), hookNote)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Notify: %v, want error %v", err, tc.wantErr)
			}
			got := srv.requests()
			if len(got) != tc.wantN {
				t.Fatalf("%d requests, want %d", len(got), tc.wantN)
			}
			wait := 20 * time.Millisecond
			for i, r := range got {
				if !r.verified {
					t.Errorf("request %d: signature does not verify", i)
				}
				if string(r.body) != string(hookNote.Payload) {
					t.Errorf("request %d: body %s", i, r.body)
				}
				if r.header.Get(HeaderDelivery) != "al-x/alert" || r.header.Get(HeaderEvent) != TypeAlert ||
					r.header.Get("Content-Type") != "application/json" {
					t.Errorf("request %d: headers %v", i, r.header)
				}
				if i > 0 && tc.delay == 0 {
					// The gap between attempts is at least the backoff, which doubles.
					if gap := r.at.Sub(got[i-1].at); gap < wait {
						t.Errorf("attempt %d came %v after the previous one, want >= %v", i, gap, wait)
					}
					wait = min(wait*2, 100*time.Millisecond)
				}
			}
		})
	}
}

func TestWebhookSignatureRejectsTampering(t *testing.T) {
	body := []byte(`{"type":"alert"}`)
	sig := Sign([]byte("k"), "1700000000", body)
	for _, tc := range []struct {
		name             string
		secret, ts, body string
		sig              string
		want             bool
	}{
		{"genuine", "k", "1700000000", string(body), sig, true},
		{"other body", "k", "1700000000", `{"type":"ended"}`, sig, false},
		{"other timestamp", "k", "1700000001", string(body), sig, false},
		{"other secret", "k2", "1700000000", string(body), sig, false},
		{"no prefix", "k", "1700000000", string(body), sig[len("sha256="):], false},
	} {
		if got := Verify([]byte(tc.secret), tc.ts, []byte(tc.body), tc.sig); got != tc.want {
			t.Errorf("%s: Verify = %v", tc.name, got)
		}
	}
}

func TestWebhookHonoursRetryAfterAndContext(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(1))
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	cfg := hookConfig(ts.URL)
	cfg.MaxBackoff = 2 * time.Second
	w, err := NewWebhook(cfg, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = w.Notify(ctx, hookNote)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Notify: %v, want the context's deadline", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 || times[1].Sub(times[0]) < time.Second {
		t.Errorf("%d attempts %v: want the second one Retry-After (1 s) later", len(times), times)
	}
}

func TestNewWebhookNeedsURLAndSecret(t *testing.T) {
	if _, err := NewWebhook(WebhookConfig{}, nil); err == nil {
		t.Error("no url accepted")
	}
	c := hookConfig("http://127.0.0.1:1/")
	c.Secret = ""
	if _, err := NewWebhook(c, nil); err == nil {
		t.Error("no secret accepted")
	}
}
