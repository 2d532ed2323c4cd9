package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// FileMode is the mode of the files Write creates: a night report is
// health data, readable only by its owner.
const FileMode os.FileMode = 0o600

// Options says which night to report and where to write it.
type Options struct {
	Night     string         // YYYY-MM-DD, the local date the night began
	Location  *time.Location // the wearer's time zone
	StartHour int            // local hour nights begin, 0..23
	Device    string         // the device to report on
	// Who names the wearer on the page; empty: the device id.
	Who string
	// Window is the envelope averaging window; default DefaultWindow.
	Window time.Duration
	// PNGPath and HTMLPath are the files to write; empty: not written.
	PNGPath, HTMLPath string
	// Now is the wall clock for the page's "made on"; nil: time.Now.
	Now func() time.Time
}

// Build loads the night from src and computes its numbers. Rows the source
// could not read are noted in the report and returned as an error next to
// a usable report.
func Build(ctx context.Context, src Source, opt Options) (*Report, error) {
	if !wire.ValidDevice(opt.Device) {
		return nil, fmt.Errorf("report: invalid device id %q", opt.Device)
	}
	loc := opt.Location
	if loc == nil {
		loc = time.Local
	}
	from, to, err := NightWindow(opt.Night, loc, opt.StartHour)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	d, loadErr := src.Load(ctx, Query{Device: opt.Device, From: from, To: to, Window: opt.Window})
	if d == nil {
		return nil, loadErr
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	who := opt.Who
	if who == "" {
		who = opt.Device
	}
	return &Report{
		Night:     opt.Night,
		Location:  loc,
		Who:       who,
		Source:    src.Name(),
		Generated: now(),
		Data:      d,
		Summary:   Summarize(d),
	}, loadErr
}

// Write builds the report and writes its PNG and HTML files. Each file is
// written to a temporary file and renamed into place, so an interrupted
// run never leaves a half-written report. A nil Report with an error means
// nothing (or not everything) was written; a Report with an error means
// the files were written without the rows the source could not read, and
// the page says so.
func Write(ctx context.Context, src Source, opt Options) (*Report, error) {
	if opt.PNGPath == "" && opt.HTMLPath == "" {
		return nil, errors.New("report: no output file")
	}
	r, loadErr := Build(ctx, src, opt)
	if r == nil {
		return nil, loadErr
	}
	var png, page bytes.Buffer
	if err := RenderPNG(&png, r); err != nil {
		return nil, err
	}
	if err := RenderHTML(&page, r, png.Bytes()); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		b    []byte
	}{{opt.PNGPath, png.Bytes()}, {opt.HTMLPath, page.Bytes()}} {
		if f.path == "" {
			continue
		}
		if err := writeFile(ctx, f.path, f.b); err != nil {
			return nil, err
		}
	}
	return r, loadErr
}

// writeFile writes b to path through a temporary file in the same
// directory, synced before the rename.
func writeFile(ctx context.Context, path string, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(FileMode); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	ok = true
	return nil
}

// FindDevice returns the one device with events in the night that match
// (a subject pseudonym's device, say). It fails when none or several match.
func FindDevice(ctx context.Context, src Source, night string, loc *time.Location, startHour int, match func(device string) bool) (string, error) {
	from, to, err := NightWindow(night, loc, startHour)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	devices, err := src.Devices(ctx, from, to)
	if err != nil {
		return "", err
	}
	var found []string
	for _, d := range devices {
		if match(d) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("report: no device with events in the night of %s matches (%d devices have events)", night, len(devices))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("report: %d devices match; give --device", len(found))
}
