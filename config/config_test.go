package config

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newFlags() (*flag.FlagSet, *string, *string, *int) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("config", "", "config file")
	url := fs.String("mqtt-url", "tcp://127.0.0.1:1883", "")
	tok := fs.String("influx-token", "", "")
	n := fs.Int("shards", 2, "")
	return fs, url, tok, n
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("mqtt-url: tcp://file:1883\nshards: 7\ninflux-token: fromfile\n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		url     string
		shards  int
		token   string
		wantErr string
	}{
		{name: "defaults", url: "tcp://127.0.0.1:1883", shards: 2},
		{name: "file", args: []string{"--config", file}, url: "tcp://file:1883", shards: 7, token: "fromfile"},
		{name: "env beats file", args: []string{"--config", file}, env: map[string]string{"CRAMPWATCH_SHARDS": "9"}, url: "tcp://file:1883", shards: 9, token: "fromfile"},
		{name: "flag beats env", args: []string{"--config", file, "--shards", "3"}, env: map[string]string{"CRAMPWATCH_SHARDS": "9"}, url: "tcp://file:1883", shards: 3, token: "fromfile"},
		{name: "config path from env", env: map[string]string{"CRAMPWATCH_CONFIG": file}, url: "tcp://file:1883", shards: 7, token: "fromfile"},
		{name: "bad env value", env: map[string]string{"CRAMPWATCH_SHARDS": "many"}, wantErr: "CRAMPWATCH_SHARDS"},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "nope.yaml")}, wantErr: "config file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, url, tok, n := newFlags()
			l := Loader{FileFlag: "config", Getenv: func(k string) string { return tc.env[k] }}
			err := l.Parse(fs, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *url != tc.url || *n != tc.shards || *tok != tc.token {
				t.Errorf("got url=%q shards=%d token=%q, want %q %d %q", *url, *n, *tok, tc.url, tc.shards, tc.token)
			}
		})
	}
}

func TestUnknownFileKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("mqtt-ulr: x\n"), 0o600)
	fs, _, _, _ := newFlags()
	err := Loader{FileFlag: "config", Getenv: func(string) string { return "" }}.Parse(fs, []string{"--config", file})
	if err == nil || !strings.Contains(err.Error(), "mqtt-ulr") {
		t.Fatalf("err = %v, want unknown setting", err)
	}
}

func TestLogValueRedactsSecrets(t *testing.T) {
	fs, _, _, _ := newFlags()
	l := Loader{Secrets: []string{"influx-token"}, Getenv: func(string) string { return "" }}
	if err := l.Parse(fs, []string{"--influx-token", "s3cret"}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "settings", l.LogValue(fs))
	if strings.Contains(b.String(), "s3cret") || !strings.Contains(b.String(), "<redacted>") {
		t.Fatalf("log line leaks or lacks redaction: %s", b.String())
	}
}

func TestReadSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(file, []byte("abc\n"), 0o600)
	if v, _ := ReadSecret("", file); v != "abc" {
		t.Errorf("from file = %q", v)
	}
	if v, _ := ReadSecret("direct", file); v != "direct" {
		t.Errorf("direct = %q", v)
	}
	if _, err := ReadSecret("", file+".missing"); err == nil {
		t.Error("missing file: no error")
	}
}
