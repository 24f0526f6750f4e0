package sandbox

import (
	"encoding/json"
	"time"
)

// specJSON adds the seconds form of the timeout to Spec's JSON.
type specJSON struct {
	specAlias
	TimeoutSeconds float64 `json:"timeout,omitempty"`
}

type specAlias Spec // no methods: avoids recursion

// MarshalJSON encodes the spec with its timeout in seconds.
func (s Spec) MarshalJSON() ([]byte, error) {
	return json.Marshal(specJSON{specAlias: specAlias(s), TimeoutSeconds: s.Timeout.Seconds()})
}

// UnmarshalJSON decodes what MarshalJSON produces.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var w specJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Spec(w.specAlias)
	s.Timeout = time.Duration(w.TimeoutSeconds * float64(time.Second))
	return nil
}
