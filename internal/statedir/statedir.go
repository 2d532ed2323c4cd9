// Package statedir keeps one JSON file per device in a directory: what the
// pipeline (detector state) and the alert engine (alert state) save at a
// graceful stop under --state-dir and read back at the next start. Files
// are replaced atomically (github.com/google/renameio: temporary file,
// fsync, rename), so a crash leaves the old file or the new one, never half
// of one; the directory is private (0700), since it describes health data.
package statedir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/crampwatch/crampwatch/wire"
)

// Create makes dir (and its parents) with mode 0700 if it does not exist.
func Create(dir string) error { return os.MkdirAll(dir, 0o700) }

// Devices lists the devices that have a file in dir. A missing dir is not
// an error: it has none.
func Devices(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var devices []string
	for _, e := range entries {
		device, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && !e.IsDir() && wire.ValidDevice(device) {
			devices = append(devices, device)
		}
	}
	return devices, nil
}

// Path is the file of device in dir.
func Path(dir, device string) string { return filepath.Join(dir, device+".json") }

// Read returns the contents of device's file, refusing one larger than
// maxBytes.
func Read(dir, device string, maxBytes int64) ([]byte, error) {
	f, err := os.Open(Path(dir, device))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxBytes)
	}
	return b, nil
}

// Write replaces device's file with b atomically.
func Write(dir, device string, b []byte) error {
	if err := renameio.WriteFile(Path(dir, device), b, 0o600); err != nil {
		return fmt.Errorf("state of %s: %w", device, err)
	}
	return nil
}

// Remove removes device's file; a file that is not there is not an error.
func Remove(dir, device string) error {
	if err := os.Remove(Path(dir, device)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Sync flushes the directory itself, so that the renames of Write and the
// removals survive a crash.
func Sync(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
