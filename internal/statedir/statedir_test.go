package statedir

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if got, err := Devices(dir); err != nil || got != nil {
		t.Fatalf("missing dir: %v, %v", got, err)
	}
	if err := Create(dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode: %v, %v", st, err)
	}
	for _, d := range []string{"dev-1", "dev-2"} {
		if err := Write(dir, d, []byte(`{"device":"`+d+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(dir, "dev-1", []byte(`{"device":"dev-1","v":2}`)); err != nil { // replaces
		t.Fatal(err)
	}
	// Not device files: a directory, another suffix, an invalid id.
	os.Mkdir(filepath.Join(dir, "alerts"), 0o700)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "bad id.json"), nil, 0o600)
	if err := Sync(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Devices(dir)
	slices.Sort(got)
	if err != nil || strings.Join(got, ",") != "dev-1,dev-2" {
		t.Fatalf("Devices = %v, %v", got, err)
	}
	if b, err := Read(dir, "dev-1", 100); err != nil || string(b) != `{"device":"dev-1","v":2}` {
		t.Errorf("Read = %q, %v", b, err)
	}
	if _, err := Read(dir, "dev-1", 5); err == nil || !strings.Contains(err.Error(), "larger than 5") {
		t.Errorf("Read over the limit: %v", err)
	}
	if st, err := os.Stat(Path(dir, "dev-2")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v, %v", st, err)
	}
	if err := Remove(dir, "dev-2"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, "dev-2"); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
	if got, _ := Devices(dir); len(got) != 1 {
		t.Errorf("after Remove: %v", got)
	}
}
