package owner

import (
	"fmt"
	"os"
	"testing"
)

func TestAlive(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for id, want := range map[string][2]bool{
		ID(): {true, true},
		fmt.Sprintf("%s/%d/%d", host, os.Getpid(), StartTime(os.Getpid())+1): {false, true}, // pid reused
		fmt.Sprintf("%s/%d/%d", host, 999999, 12345):                         {false, true}, // no such process
		"other-host/1/1": {true, true}, // cannot tell from here
		"garbage":        {false, false},
		host + "/x/1":    {false, false},
		"":               {false, false},
	} {
		if alive, ok := Alive(id); alive != want[0] || ok != want[1] {
			t.Errorf("Alive(%q) = %v, %v, want %v, %v", id, alive, ok, want[0], want[1])
		}
	}
	if StartTime(os.Getpid()) == 0 || StartTime(-1) != 0 {
		t.Error("StartTime of this process is 0, or of no process is not")
	}
}

func TestTag(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	if id, ok := ParseTag(Tag()); !ok || id != ID() {
		t.Errorf("ParseTag(Tag()) = %q, %v, want %q", id, ok, ID())
	}
	if tag := TagOf("my-host.example/12/345"); tag != "12-345-my-host.example" {
		t.Errorf("TagOf = %q", tag)
	}
	if id, ok := ParseTag("12-345-my-host.example"); !ok || id != "my-host.example/12/345" {
		t.Errorf("ParseTag = %q, %v", id, ok)
	}
	for _, bad := range []string{"", "12-345", "12-345-", "x-345-h", "12-y-h", "12-345-a/b", "-1-2-h"} {
		if id, ok := ParseTag(bad); ok {
			t.Errorf("ParseTag(%q) = %q, want not ok", bad, id)
		}
	}
	if TagOf("garbage") != "" {
		t.Error("TagOf of a malformed ID is not empty")
	}
	// Gone: only a process of this host that is known not to run.
	for id, want := range map[string]bool{
		ID():                     false,
		host + "/999999999/1":    true,
		"other-host/999999999/1": false,
		"garbage":                false,
		fmt.Sprintf("%s/%d/1", host, os.Getpid()): true, // pid reused by someone else
	} {
		if got := Gone(id); got != want {
			t.Errorf("Gone(%q) = %v, want %v", id, got, want)
		}
	}
}
