// Package config defines Warden's settings: one [Config] struct, the
// environment variables that set it, their defaults and their validation.
//
// Every setting is described once, in the registry in registry.go: its
// variable name, default, documentation, accepted range and the Config
// field it fills. [Load], [Config.Validate], [Config.String] and [Markdown]
// are all driven by that table, so documentation and behaviour cannot drift
// apart.
//
// # Sources and precedence
//
// A value comes from the first of these sources that sets it:
//
//  1. overrides, usually command-line flags ([Loader.Set], [Loader.Overrides]);
//  2. the process environment ([Loader.Environ] or [Loader.Getenv]);
//  3. a .env file ([Loader.Dotenv], read with [LoadFile] or [ParseDotenv]);
//  4. the default.
//
// An empty value counts as unset in every source, as it must for getenv,
// which cannot tell the two apart.
//
// # Names
//
// Variables use the seed platform's nested form, section and field joined
// by a double underscore: SANDBOX__MEMORY_LIMIT, API__PORT. The
// single-underscore spelling other seed documents used (SANDBOX_MEMORY_LIMIT)
// is accepted as an alias; when both are set in the same source the
// double-underscore one wins and a warning names the ignored one. Names are
// case-insensitive, as with pydantic-settings: sandbox__memory_limit works
// too. With [Loader.Getenv] only the upper- and lower-case spellings can be
// found, since getenv cannot list the environment; [Loader.Environ] finds
// any spelling.
//
// Variables that start with SANDBOX__, API__, SECURITY__ or LOG__ but name
// no setting produce a warning with the nearest known name (a typo would
// otherwise be silently ignored). Single-underscore names that are not
// aliases, such as SANDBOX_INTEGRATION used by the test suite, are ignored.
//
// # Values
//
// Surrounding whitespace is ignored. Booleans accept true/false, 1/0,
// yes/no, on/off, t/f and y/n in any case (pydantic's set). Durations accept
// a number of seconds, as the seed did ("30", "1.5"), or a Go duration
// ("90s", "2m"). Byte sizes accept a whole number with an optional unit
// ("512m", "1g", "2048k", "1048576"), see [ParseBytes]. Enumerations reject
// unknown values and list the accepted ones.
//
// # Secrets
//
// API__KEYS and SECURITY__SECRET_KEY are held as [Secret] values, which
// print as "[redacted]" through fmt, encoding/json, encoding.TextMarshaler
// and log/slog. [Config.String] and [Config.Redacted] never contain them,
// and validation errors never echo them.
package config
