package export

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeyEnv is the environment variable that holds the pseudonym key.
const KeyEnv = "CRAMPWATCH_PSEUDONYM_KEY"

// MinKeyLen is the shortest key accepted, in bytes: a short key could be
// found by trying keys against a known device id.
const MinKeyLen = 16

// PseudonymScheme describes how subjects are derived, for the manifest.
const PseudonymScheme = "sub- + base32 (RFC 4648, lower case, no padding) of the first 10 bytes of HMAC-SHA256(key, device id)"

// subjectEncoding is base32 in lower case: pseudonyms are alphanumeric and
// so valid as BIDS subject labels and file names.
var subjectEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Pseudonymizer maps device ids to stable subject pseudonyms. The same key
// gives the same pseudonym for a device in every export, so exports made at
// different times can be joined; without the key a pseudonym cannot be
// traced back to a device (80 bits of a keyed hash). It is safe for
// concurrent use. Its String and GoString never show the key.
type Pseudonymizer struct {
	key   []byte
	keyID string
}

// NewPseudonymizer returns a pseudonymizer with key, which must be at
// least MinKeyLen bytes.
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("export: pseudonym key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	p := &Pseudonymizer{key: append([]byte(nil), key...)}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("crampwatch export key id"))
	p.keyID = hex.EncodeToString(m.Sum(nil)[:4])
	return p, nil
}

// LoadKey reads the pseudonym key from file if it is set, else from the
// environment variable KeyEnv (getenv; nil means os.Getenv). Surrounding
// white space (a trailing newline) is removed. It fails when neither holds
// a key: an export is never made without pseudonyms.
func LoadKey(file string, getenv func(string) string) ([]byte, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var key string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("export: pseudonym key: %w", err)
		}
		key = string(b)
	} else {
		key = getenv(KeyEnv)
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, errors.New("export: no pseudonym key: set " + KeyEnv + " or --pseudonym-key-file")
	}
	return []byte(key), nil
}

// Subject returns the pseudonym of a device.
func (p *Pseudonymizer) Subject(device string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(device))
	var sum [sha256.Size]byte
	return "sub-" + subjectEncoding.EncodeToString(m.Sum(sum[:0])[:10])
}

// KeyID is a short fingerprint of the key (the first 4 bytes of an HMAC
// of a fixed text, in hex): two exports with the same KeyID have
// comparable pseudonyms. It reveals nothing about the key.
func (p *Pseudonymizer) KeyID() string { return p.keyID }

// String hides the key.
func (p *Pseudonymizer) String() string { return "Pseudonymizer(key " + p.keyID + ")" }

// GoString hides the key from %#v.
func (p *Pseudonymizer) GoString() string { return p.String() }
