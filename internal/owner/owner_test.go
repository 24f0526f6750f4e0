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
