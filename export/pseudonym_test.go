package export

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var subjectPattern = regexp.MustCompile(`^sub-[a-z2-7]{16}$`)

func TestPseudonymsStableAndKeyed(t *testing.T) {
	a, err := NewPseudonymizer([]byte("0123456789abcdef-key-a"))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := NewPseudonymizer([]byte("0123456789abcdef-key-a"))
	b, _ := NewPseudonymizer([]byte("0123456789abcdef-key-b"))
	seen := map[string]string{}
	for i := range 1000 {
		dev := fmt.Sprintf("dev-%04d", i)
		s := a.Subject(dev)
		if !subjectPattern.MatchString(s) {
			t.Fatalf("subject %q: want sub- and 16 base32 letters", s)
		}
		if strings.Contains(s, dev) {
			t.Fatalf("subject %q contains the device id", s)
		}
		if s != a.Subject(dev) || s != a2.Subject(dev) {
			t.Fatalf("subject of %s not stable", dev)
		}
		if s == b.Subject(dev) {
			t.Fatalf("subject of %s is the same under another key", dev)
		}
		if other, dup := seen[s]; dup {
			t.Fatalf("%s and %s share subject %s", dev, other, s)
		}
		seen[s] = dev
	}
	if a.KeyID() == b.KeyID() || a.KeyID() != a2.KeyID() || len(a.KeyID()) != 8 {
		t.Errorf("key ids %q %q %q", a.KeyID(), a2.KeyID(), b.KeyID())
	}
}

// knownSubject pins the scheme: exports made months apart must stay
// joinable, so the pseudonym of a device under a key may never change.
const knownSubject = "sub-asbpnrefy2qa7fkf"

func TestPseudonymKnownValue(t *testing.T) {
	// HMAC-SHA256("crampwatch-test-key-0001", "night-sim-01"), first 10
	// bytes, base32: computed independently with Python's hmac module.
	p, _ := NewPseudonymizer([]byte("crampwatch-test-key-0001"))
	if got := p.Subject("night-sim-01"); got != knownSubject {
		t.Errorf("Subject = %s, want %s", got, knownSubject)
	}
}

func TestPseudonymizerHidesKey(t *testing.T) {
	key := "super-secret-key-material-123"
	p, _ := NewPseudonymizer([]byte(key))
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p)} {
		if strings.Contains(s, key) {
			t.Errorf("%q shows the key", s)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte("from-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(name string) string {
			if name == KeyEnv {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name, file, env, want string
		wantErr               bool
	}{
		{name: "file wins", file: file, env: "from-env-0123456789", want: "from-file-0123456789"},
		{name: "env", env: " from-env-0123456789 ", want: "from-env-0123456789"},
		{name: "none", wantErr: true},
		{name: "missing file", file: filepath.Join(dir, "nope"), env: "x", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadKey(tc.file, env(tc.env))
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Errorf("LoadKey = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if _, err := NewPseudonymizer([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}
