package seatbelt

import (
	"encoding/binary"
	"slices"
	"testing"
)

// procArgs builds a kern.procargs2 value as macOS lays it out.
func procArgs(exe string, pad int, argv, env, apple []string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(argv)))
	b = append(b, exe...)
	b = append(b, make([]byte, 1+pad)...)
	for _, s := range argv {
		b = append(b, s...)
		b = append(b, 0)
	}
	for _, s := range env {
		b = append(b, s...)
		b = append(b, 0)
	}
	b = append(b, 0)
	for _, s := range apple {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func TestProcArgsEnv(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=/usr/bin", MarkerEnv + "=sb-1", "EMPTY="}
	for _, tc := range []struct {
		name string
		buf  []byte
		want []string
		ok   bool
	}{
		{"typical", procArgs("/usr/bin/python3", 7, []string{"python3", "-c", "src", "agent"}, env, []string{"executable_path=/usr/bin/python3"}), env, true},
		{"no padding", procArgs("/bin/sleep", 0, []string{"sleep", "1"}, env, nil), env, true},
		// An argument that looks like the marker is not the environment.
		{"marker in argv", procArgs("/bin/echo", 3, []string{"echo", MarkerEnv + "=sb-1"}, []string{"A=1"}, nil), []string{"A=1"}, true},
		{"no environment", procArgs("/bin/true", 2, []string{"true"}, nil, nil), nil, true},
		{"empty", nil, nil, false},
		{"truncated argc", []byte{1, 0}, nil, false},
		{"argv cut short", append(binary.LittleEndian.AppendUint32(nil, 3), "/x\x00\x00a\x00b"...), nil, false},
		{"environment cut short", append(binary.LittleEndian.AppendUint32(nil, 1), "/x\x00a\x00A=1\x00B=2"...), []string{"A=1"}, true},
	} {
		got, ok := procArgsEnv(tc.buf)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s: procArgsEnv = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzProcArgsEnv(f *testing.F) {
	f.Add(procArgs("/usr/bin/python3", 5, []string{"python3", "-c", "x"}, []string{"A=1"}, []string{"k=v"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '/', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		env, ok := procArgsEnv(b)
		if !ok && env != nil {
			t.Errorf("not ok but returned %q", env)
		}
		for _, e := range env {
			if e == "" {
				t.Errorf("empty entry in %q", env)
			}
		}
	})
}
