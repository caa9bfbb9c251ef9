// Package secret holds values that must never reach logs, process lists,
// labels or API responses.
package secret

import "log/slog"

// Value is a secret string. Its String, GoString and LogValue methods return
// "[redacted]", so printing or logging it by mistake leaks nothing; Reveal is
// the one deliberate way to read it.
type Value struct{ s string }

const redacted = "[redacted]"

// New wraps s.
func New(s string) Value { return Value{s: s} }

// Reveal returns the secret itself, for the one call that needs it.
func (v Value) Reveal() string { return v.s }

// IsZero reports whether no secret was set.
func (v Value) IsZero() bool { return v.s == "" }

// String implements fmt.Stringer.
func (Value) String() string { return redacted }

// GoString implements fmt.GoStringer, so %#v redacts too.
func (Value) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler, so JSON and other encoders redact too.
func (Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }
